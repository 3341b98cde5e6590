"""CLIP through ``open_clip``: LAION's checkpoints, and the multilingual XLM-RoBERTa variant.

The architecture comes from the repository's ``open_clip_config.json`` when it
has one, else from the catalogue's ``architecture`` option (an open_clip
built-in). A Hugging Face text tower (multilingual CLIP) is built from the
configuration and tokenizer of the required ``xlm-roberta-base-text``
component, never fetched at run time. Shapes, for an input side S:

* images ``[B, 3, S, S]`` (normalised with ``mean``/``std``) → ``[B, D]``;
* texts: tokens ``[N, L]`` (L = context length, 77 for OpenAI's tokenizer) → ``[N, D]``;

both L2-normalised in float32, so a dot product is the cosine similarity.
D = 512 for ViT-B-32, 768 for ViT-L-14.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import MarginaliaError
from engine.models.adapters import ModelFiles
from engine.models.adapters.weights import NotAWeightsFile, read_state_dict, size_in_bytes, skipped_initialisation
from engine.models.precision import AUTOMATIC, autocast, policy
from engine.models.runtime import weight_and_compute_dtypes

CONFIG_FILE = "open_clip_config.json"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# bf16 image tower on a CPU with the instructions: 34.5 images/s instead of 19.5 (ViT-B-32, 2 threads),
# vectors at cosine ≥ 0.999 to float32 (tests/test_precision.py). Texts stay float32: one query is cheap.
# Faster still, on CPUs with or without bf16, is an int8 ONNX image tower (``clip_onnx``), used once it has
# been checked faithful on the installed weights and this processor; this is the path until then, for lone
# images, and where every int8 recipe is refused.
HALF_ON_CPU = True
INT8_CHECK_IMAGES = 4  # the int8 tower is checked on a batch of at least this many real pages


@dataclass
class ClipNetwork:
    model: Any  # open_clip CLIP or CustomTextCLIP, eval mode
    tokenizer: Any
    device: str
    dtype: Any  # the weights' (half on GPUs)
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embedding_width: int
    size_bytes: int
    compute_dtype: Any = None  # the image tower's autocast precision (bf16 on CPUs that have it)
    derived_folder: Path | None = None  # where exports of these weights are kept
    checksum: str = ""
    _int8_images: Any = None  # clip_onnx.CheckedTower once checked in this load; False: not here, or refused

    def to(self, device: str) -> ClipNetwork:
        self.dtype, self.compute_dtype = weight_and_compute_dtypes(device, half_on_cpu=HALF_ON_CPU)
        self._int8_images = None
        self.model.to(device=device, dtype=self.dtype)
        self.device = device
        self.size_bytes = size_in_bytes(self.model)
        return self

    @property
    def logit_scale(self) -> float:
        """The learnt temperature: similarities × this are CLIP's logits (100 for the published models)."""
        return float(self.model.logit_scale.detach().exp())

    def encode_images(self, pixels: Any) -> Any:
        """``[B, 3, S, S]`` normalised pixels → ``[B, D]`` unit vectors (float32)."""
        import torch

        tower = self._int8_tower(pixels)
        if tower is not None:
            vectors = tower.session.run(None, {"pixels": pixels.float().cpu().numpy()})[0]
            return torch.nn.functional.normalize(torch.from_numpy(vectors), dim=-1)
        # no_grad, not inference_mode: under inference_mode the CPU's bf16 autocast ran this tower at 9 images/s
        # instead of 38 (ViT-B-32, 2 threads, measured): it recasts the weights on every call.
        with torch.inference_mode(False), torch.no_grad(), autocast(self.device, self.compute_dtype):
            features = self.model.encode_image(pixels.to(self.device, self.dtype))
            return torch.nn.functional.normalize(features.float(), dim=-1)

    def _int8_tower(self, pixels: Any) -> Any:
        """The checked int8 image tower on a CPU in automatic precision, else ``None``."""
        if self._int8_images is False or self.device != "cpu" or policy() != AUTOMATIC or not self.derived_folder:
            return None
        if self._int8_images is None:
            if len(pixels) < INT8_CHECK_IMAGES:
                return None  # checked on the first real batch, not on a lone query image
            from engine.models.adapters.clip_onnx import image_session

            self._int8_images = image_session(self.model, self.derived_folder, self.checksum, pixels) or False
        return self._int8_images or None

    @property
    def runtime(self) -> str:
        """What computes the image vectors now: ``onnxruntime-<int8 recipe>`` or ``torch-<precision>``."""
        if self._int8_images:
            return f"onnxruntime-{self._int8_images.recipe}"
        # A GPU holds half-precision weights and computes in them (its autocast dtype stays float32); a CPU holds
        # float32 weights and computes in its autocast dtype.
        computes_in = self.dtype if str(self.compute_dtype) in ("None", "torch.float32") else self.compute_dtype
        return f"torch-{str(computes_in).removeprefix('torch.')}"

    def encode_texts(self, texts: list[str]) -> Any:
        """N texts → ``[N, D]`` unit vectors (float32)."""
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(texts).to(self.device)
            features = self.model.encode_text(tokens)
            return torch.nn.functional.normalize(features.float(), dim=-1)

    def prepare(self, image: Any) -> Any:
        """A PIL image → ``[3, S, S]``: shorter side to S (bicubic), centre crop, normalise."""
        import torch

        from engine.imaging.model_input import centre_square, normalised

        return torch.from_numpy(normalised(centre_square(image, self.image_size), self.mean, self.std))


def _configuration(files: ModelFiles) -> dict[str, Any]:
    import open_clip

    if files.has(CONFIG_FILE):
        try:
            config = json.loads(files.path(CONFIG_FILE).read_text(encoding="utf-8"))
            return {"model_cfg": config["model_cfg"], "preprocess_cfg": config.get("preprocess_cfg", {})}
        except (ValueError, KeyError) as error:
            raise NotAWeightsFile(f"{CONFIG_FILE} of {files.spec.name} is damaged ({error}).") from error
    architecture = files.spec.options.get("architecture", "")
    model_cfg = open_clip.get_model_config(architecture)
    if model_cfg is None:
        raise MarginaliaError(f"open_clip does not know the architecture '{architecture}' of {files.spec.name}.")
    return {"model_cfg": copy.deepcopy(model_cfg), "preprocess_cfg": {}}


def _text_component_folder(files: ModelFiles) -> str:
    if not files.requirements:
        raise MarginaliaError(f"{files.spec.name} needs a text component that the catalogue does not name.")
    return str(next(iter(files.requirements.values())).folder)


def load(files: ModelFiles, device: str) -> ClipNetwork:
    import open_clip
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    config = _configuration(files)
    model_cfg = config["model_cfg"]
    text_cfg = model_cfg.setdefault("text_cfg", {})
    hf_text = "hf_model_name" in text_cfg
    if hf_text:
        folder = _text_component_folder(files)
        text_cfg.update(hf_model_name=folder, hf_tokenizer_name=folder, hf_model_pretrained=False)
    model_class = open_clip.CustomTextCLIP if model_cfg.pop("custom_text", False) or hf_text else open_clip.CLIP
    with skipped_initialisation():  # the checkpoint overwrites every weight
        model = model_class(**model_cfg)
    weights_file = files.spec.weights_file
    weights = {key.removeprefix("module."): value
               for key, value in read_state_dict(files.path(weights_file)).items()}
    own = model.state_dict()
    weights = {key: value for key, value in weights.items()
               if key in own or not key.endswith("position_ids")}  # older transformers saved them
    try:
        model.load_state_dict(weights, strict=True, assign=True)  # no second copy of the weights
    except RuntimeError as error:
        raise NotAWeightsFile(f"{weights_file} does not match the CLIP architecture of {files.spec.name}: "
                              f"{str(error).splitlines()[0]}") from error
    context_length = text_cfg.get("context_length", 77)
    tokenizer = (HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=context_length)
                 if hf_text else SimpleTokenizer(context_length=context_length))
    preprocess = config["preprocess_cfg"]
    image_size = model_cfg["vision_cfg"]["image_size"]
    network = ClipNetwork(
        model=model.eval(), tokenizer=tokenizer, device="cpu", dtype=None,
        image_size=image_size if isinstance(image_size, int) else image_size[0],
        mean=tuple(preprocess.get("mean", OPENAI_MEAN)), std=tuple(preprocess.get("std", OPENAI_STD)),
        embedding_width=model_cfg["embed_dim"], size_bytes=size_in_bytes(model),
        derived_folder=files.installed.folder / "derived", checksum=files.checksum(weights_file))
    return network.to(device)


def probe(network: ClipNetwork) -> str:
    """A blank image and a phrase, each to a vector, and their similarity (``models check``)."""
    import torch

    image = network.encode_images(torch.zeros(1, 3, network.image_size, network.image_size))  # [1, D]
    text = network.encode_texts(["a coat of arms"])  # [1, D]
    return f"image and text vectors of {image.shape[-1]} values, similarity {float(image @ text.T):.3f}"
