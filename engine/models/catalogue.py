"""The declarative catalogue of every model Marginalia can use.

One entry per model; code looks entries up by id and never branches on model
names. ``adapter`` names the module that loads the model (added by the model
issues). Sizes are the publishers' download sizes in bytes; ``sha256`` is
given where the publisher gives one, otherwise the hub's own checksum (the
ETag of a large file) is checked at download time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import MarginaliaError


@dataclass(frozen=True, slots=True)
class ModelFile:
    filename: str
    size: int | None = None
    sha256: str | None = None
    optional: bool = False  # some revisions of the repository lack it; the adapter has a fallback


@dataclass(frozen=True, slots=True)
class HubSource:
    """Files of a Hugging Face repository at a fixed revision."""

    repo_id: str
    files: tuple[ModelFile, ...]
    revision: str = "main"


@dataclass(frozen=True, slots=True)
class UrlSource:
    """One file at a plain HTTPS address."""

    url: str
    file: ModelFile


@dataclass(frozen=True, slots=True)
class UserSuppliedSource:
    """No dependable download exists: the curator imports the file (``models import``)."""

    file: ModelFile
    where_to_get_it: str


Source = HubSource | UrlSource | UserSuppliedSource


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    task: str
    family: str
    source: Source
    download_size: int
    licence: str
    min_memory_gb: float
    adapter: str
    requires: tuple[str, ...] = field(default_factory=tuple)
    options: dict[str, str] = field(default_factory=dict)  # read by the adapter, e.g. an architecture

    @property
    def files(self) -> tuple[ModelFile, ...]:
        source = self.source
        return source.files if isinstance(source, HubSource) else (source.file,)

    @property
    def weights_file(self) -> str:
        """The file holding the weights: the first the entry requires (its checksum names the checkpoint)."""
        return next(file.filename for file in self.files if not file.optional)


_MB = 1_000_000
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/{}"
_GROUNDING_DINO_FILES = ("model.safetensors", "config.json", "preprocessor_config.json", "tokenizer_config.json",
                         "vocab.txt")
_GROUNDING_DINO_EXTRAS = ("tokenizer.json", "special_tokens_map.json")


def _hub(repo_id: str, *filenames: str, optional: tuple[str, ...] = ()) -> HubSource:
    return HubSource(repo_id, tuple(ModelFile(name) for name in filenames)
                     + tuple(ModelFile(name, optional=True) for name in optional))


CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec("sam-vit-b", "Segment Anything ViT-B", "segmentation", "sam",
              UrlSource(_SAM_URL.format("sam_vit_b_01ec64.pth"), ModelFile("sam_vit_b_01ec64.pth", 375_042_383)),
              375 * _MB, "Apache-2.0", 4, "engine.models.adapters.sam", options={"variant": "vit_b"}),
    ModelSpec("sam-vit-l", "Segment Anything ViT-L", "segmentation", "sam",
              UrlSource(_SAM_URL.format("sam_vit_l_0b3195.pth"), ModelFile("sam_vit_l_0b3195.pth", 1_249_524_607)),
              1250 * _MB, "Apache-2.0", 8, "engine.models.adapters.sam", options={"variant": "vit_l"}),
    ModelSpec("sam-vit-h", "Segment Anything ViT-H", "segmentation", "sam",
              UrlSource(_SAM_URL.format("sam_vit_h_4b8939.pth"), ModelFile("sam_vit_h_4b8939.pth", 2_564_550_879)),
              2565 * _MB, "Apache-2.0", 12, "engine.models.adapters.sam", options={"variant": "vit_h"}),
    # SAM 2.1 in transformers' format (safetensors + config.json): light Hiera encoders for laptops' CPUs.
    *(ModelSpec(f"sam2.1-hiera-{size}", f"SAM 2.1 Hiera-{size} (fast on a CPU)", "segmentation", "sam2",
                _hub(f"facebook/sam2.1-hiera-{size}", "model.safetensors", "config.json",
                     optional=("preprocessor_config.json",)),
                size_mb * _MB, "Apache-2.0", memory, "engine.models.adapters.sam2")
      for size, size_mb, memory in (("tiny", 156, 1), ("small", 184, 1.5))),
    *(ModelSpec(f"hi-sam-vit-{size}", f"Hi-SAM ViT-{size.upper()} (hierarchical text)", "text-segmentation",
                "hi-sam",
                UserSuppliedSource(ModelFile(f"hi_sam_{size}.pth"),
                                   f"the authors' Hi-SAM checkpoint hi_sam_{size}.pth (trained on HierText), linked "
                                   "from the README of github.com/ymy-k/Hi-SAM; where those links are dead, the "
                                   "community mirror huggingface.co/datasets/dexforint/Hi-SAM-weights (unofficial). "
                                   f"A stroke-only SAM-TS file (sam_tss_{size}_*.pth) also works, for text strokes "
                                   "only. Marginalia checks the file's weights and shapes when it loads it "
                                   f"('marginalia models check hi-sam-vit-{size}')"),
                size_mb * _MB, "Apache-2.0", memory, "engine.models.adapters.hi_sam",
                requires=(f"sam-vit-{size}",))
      for size, size_mb, memory in (("b", 400, 4), ("l", 1300, 8), ("h", 2600, 12))),
    ModelSpec("grounding-dino-tiny", "Grounding DINO tiny", "detection", "grounding-dino",
              _hub("IDEA-Research/grounding-dino-tiny", *_GROUNDING_DINO_FILES, optional=_GROUNDING_DINO_EXTRAS),
              690 * _MB, "Apache-2.0", 4, "engine.models.adapters.grounding_dino"),
    ModelSpec("grounding-dino-base", "Grounding DINO base", "detection", "grounding-dino",
              _hub("IDEA-Research/grounding-dino-base", *_GROUNDING_DINO_FILES, optional=_GROUNDING_DINO_EXTRAS),
              935 * _MB, "Apache-2.0", 6, "engine.models.adapters.grounding_dino"),
    *(ModelSpec(f"dino-{name}", f"DINO {label}", "attention", "dino",
                _hub(f"facebook/dino-{name}", "pytorch_model.bin", "config.json", "preprocessor_config.json"),
                size_mb * _MB, "Apache-2.0", 2, "engine.models.adapters.dino")
      for name, label, size_mb in (("vits16", "ViT-S/16", 87), ("vits8", "ViT-S/8", 87),
                                   ("vitb16", "ViT-B/16", 343))),
    *(ModelSpec(f"dinov2-reg-{size}", f"DINOv2 {size} with registers", "attention", "dinov2",
                _hub(f"facebook/dinov2-with-registers-{size}", "model.safetensors", "config.json",
                     "preprocessor_config.json"),
                size_mb * _MB, "Apache-2.0", 2, "engine.models.adapters.dino")
      for size, size_mb in (("small", 88), ("base", 346))),
    ModelSpec("clip-vit-b-32", "CLIP ViT-B-32 (LAION-2B)", "retrieval", "open-clip",
              _hub("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors",
                   optional=("open_clip_config.json",)),
              605 * _MB, "MIT", 2, "engine.models.adapters.open_clip", options={"architecture": "ViT-B-32"}),
    ModelSpec("clip-vit-l-14", "CLIP ViT-L-14 (LAION-2B)", "retrieval", "open-clip",
              _hub("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "open_clip_model.safetensors",
                   optional=("open_clip_config.json",)),
              1710 * _MB, "MIT", 6, "engine.models.adapters.open_clip", options={"architecture": "ViT-L-14"}),
    ModelSpec("clip-xlmr-b-32", "Multilingual CLIP ViT-B-32 / XLM-RoBERTa (LAION-5B)", "retrieval",
              "open-clip",
              _hub("laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k", "open_clip_pytorch_model.bin",
                   optional=("open_clip_config.json",)),
              1470 * _MB, "MIT", 4, "engine.models.adapters.open_clip",
              requires=("xlm-roberta-base-text",), options={"architecture": "xlm-roberta-base-ViT-B-32"}),
    # The multilingual CLIP's text tower is built from XLM-RoBERTa's configuration and tokenizer;
    # its weights come with the CLIP checkpoint, so only these small files are fetched.
    ModelSpec("xlm-roberta-base-text", "XLM-RoBERTa tokenizer and configuration (for multilingual CLIP)",
              "component", "hf-text",
              _hub("FacebookAI/xlm-roberta-base", "config.json", "tokenizer.json",
                   optional=("tokenizer_config.json", "sentencepiece.bpe.model")),
              14 * _MB, "MIT", 0, "engine.models.adapters.component"),
)

_BY_ID = {spec.id: spec for spec in CATALOGUE}
SUGGESTED_SEGMENTATION = {"cpu": "sam2.1-hiera-tiny", "gpu": "sam-vit-b"}  # a CPU encodes Hiera-tiny in ~2 s


def suggested_segmentation_model(has_gpu: bool, installed: set[str] | frozenset[str] = frozenset()) -> str:
    """The SAM model offered first: a light one where pages are encoded on the CPU, unless only another SAM
    model is installed (the curator's own choice then)."""
    suggested = SUGGESTED_SEGMENTATION["gpu" if has_gpu else "cpu"]
    if suggested in installed:
        return suggested
    return next((spec.id for spec in CATALOGUE if spec.task == "segmentation" and spec.id in installed), suggested)


class UnknownModel(MarginaliaError):
    pass


def get_spec(model_id: str) -> ModelSpec:
    try:
        return _BY_ID[model_id]
    except KeyError:
        close = [known for known in _BY_ID if model_id.split("-")[0] in known]
        hint = f" Did you mean {', '.join(close[:4])}?" if close else ""
        raise UnknownModel(f"No model called '{model_id}' in the catalogue.{hint} "
                           "See 'marginalia models list'.") from None
