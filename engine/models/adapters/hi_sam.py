"""Hi-SAM (hierarchical text segmentation) from the authors' ``.pth`` files and SAM's own checkpoint.

The published Hi-SAM files hold what training changed (adapters, modal aligner, both decoders), not the
frozen ViT: loading takes every weight the Hi-SAM file lacks from the SAM checkpoint of the same size (the
catalogue's requirement), as the authors' builder does, then loads the whole strictly: every key used,
none left over, every shape checked. Files that wrap their weights in ``{"model": …}`` beside optimizer
state are unwrapped; nothing is unpickled beyond tensors. ViT-B/L/H (and the test kit's tiny build) are
read off the tensors. Shapes: see ``engine.models.hi_sam_modules``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.jobs import CancelToken, cancel_between
from engine.models.adapters import ModelFiles
from engine.models.adapters.sam import DECODER_HEADS, PIXEL_MEAN, PIXEL_STD, SamArchitecture
from engine.models.adapters.weights import NotAWeightsFile, build_without_init, fill_from, read_state_dict, size_in_bytes
from engine.models.precision import autocast
from engine.models.runtime import half_precision_for

ALIGNER_HEADS = 8  # fixed by Hi-SAM's design; not visible in the weights
# bf16 on a CPU with the instructions (avx512_bf16, 2 cores): a ViT-B window encodes in 4.5 s instead of 7.5 s
# and a point's levels decode in 12-15 ms instead of 21-24 ms; stroke and line masks stay at IoU >= 0.98 to float32
# (tests/test_precision.py). The S-Decoder gains nothing, so it stays float32.
HALF_ON_CPU = True


@dataclass(frozen=True, slots=True)
class HiSamArchitecture:
    sam: SamArchitecture
    prompt_tokens: int  # the modal aligner's (12 published)
    aligner_layers: int
    hierarchy: bool  # has the H-Decoder (Hi-SAM) or strokes only (SAM-TS)

    @classmethod
    def from_weights(cls, weights: dict[str, Any]) -> HiSamArchitecture:
        """From a complete state dict (Hi-SAM's keys merged over SAM's)."""
        sam_part = {key: value for key, value in weights.items() if not key.startswith(("modal_aligner.", "hi_decoder."))}
        pattern = re.compile(r"modal_aligner\.transformer_layers\.(\d+)\.")
        layers = {int(m.group(1)) for key in weights if (m := pattern.match(key))}
        return cls(SamArchitecture.from_weights(sam_part), weights["modal_aligner.conv.0.weight"].shape[0],
                   len(layers), any(key.startswith("hi_decoder.") for key in weights))

    def build(self) -> Any:
        from segment_anything.modeling import PromptEncoder, TwoWayTransformer

        from engine.models.fused_attention import use_fused_attention
        from engine.models.hi_sam_modules import (AdaptedImageEncoder, HierarchyDecoder, HiSam, ModalAligner,
                                                  StrokeDecoder, use_fused_layer_norms)

        sam = self.sam
        grid = sam.image_size // sam.patch_size

        def decoder(kind: type) -> Any:
            return kind(transformer_dim=sam.prompt_width, num_multimask_outputs=sam.multimask_outputs,
                        transformer=TwoWayTransformer(depth=sam.decoder_depth, embedding_dim=sam.prompt_width,
                                                      mlp_dim=sam.decoder_mlp_width, num_heads=DECODER_HEADS),
                        iou_head_depth=sam.iou_head_depth, iou_head_hidden_dim=sam.iou_head_width)

        return use_fused_attention(use_fused_layer_norms(HiSam(
            image_encoder=AdaptedImageEncoder(
                img_size=sam.image_size, patch_size=sam.patch_size, embed_dim=sam.encoder_width,
                depth=sam.encoder_depth, num_heads=sam.encoder_heads, mlp_ratio=sam.encoder_mlp_ratio,
                out_chans=sam.prompt_width, window_size=sam.window_size, global_attn_indexes=sam.global_attention),
            modal_aligner=ModalAligner(sam.prompt_width, self.prompt_tokens, self.aligner_layers, ALIGNER_HEADS),
            prompt_encoder=PromptEncoder(embed_dim=sam.prompt_width, image_embedding_size=(grid, grid),
                                         input_image_size=(sam.image_size, sam.image_size),
                                         mask_in_chans=sam.mask_in_channels),
            mask_decoder=decoder(StrokeDecoder),
            hi_decoder=decoder(HierarchyDecoder) if self.hierarchy else None)))


@dataclass(frozen=True)
class WordInputs:
    """What one decoded point's line-words need from its decode: image tokens after the H-Decoder's two-way
    transformer — all of them ``[h·w, C]`` (4 MB in float32 for the published models), or from
    :meth:`HiSamNetwork.word_inputs_for` only those of ``box`` (row0, row1, column0, column1 of the grid),
    ``[rows·columns, C]`` — the word hyper-weights ``[1, C/16]``, and the embedding's grid ``(h, w)``."""

    source: Any
    hyper: Any
    grid: tuple[int, int]
    box: tuple[int, int, int, int] | None = None  # None: the whole grid

    @property
    def nbytes(self) -> int:
        return int(self.source.nbytes + self.hyper.nbytes)

    def covers(self, region: tuple[int, int, int, int] | None) -> bool:
        """Whether these hold the tokens the words of ``region`` (``None``: the whole frame) are made from."""
        from engine.models.hi_sam_modules import holds, word_tokens

        if self.box is None:
            return True
        return holds(self.box, word_tokens(region or (0, 4 * self.grid[0], 0, 4 * self.grid[1]), self.grid))


@dataclass
class HiSamNetwork:
    """A loaded Hi-SAM in eval mode on ``device``. ``checkpoint_sha256`` identifies both files' weights."""

    model: Any
    architecture: HiSamArchitecture
    device: str
    encoder_dtype: Any
    checkpoint_sha256: str
    size_bytes: int

    def to(self, device: str) -> HiSamNetwork:
        self.model.to(device)
        self.device = device
        self.encoder_dtype = half_precision_for(device, half_on_cpu=HALF_ON_CPU)
        return self

    @property
    def input_side(self) -> int:
        return self.architecture.sam.image_size

    def encode(self, image: np.ndarray, cancel: CancelToken | None = None) -> tuple[Any, tuple[int, int]]:
        """An RGB page or window ``[H, W, 3]`` uint8 → its embedding ``[1, C, 64, 64]`` and the size it was
        resized to in the model's input frame ``(h, w)`` (longest side = input side). ``cancel`` is honoured
        between the encoder's blocks (an encode takes seconds on a CPU)."""
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        side = self.input_side
        resized = ResizeLongestSide(side).apply_image(image)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).float()
        mean = torch.tensor(PIXEL_MEAN, device=self.device).view(-1, 1, 1)
        std = torch.tensor(PIXEL_STD, device=self.device).view(-1, 1, 1)
        pixels = (pixels - mean) / std
        height, width = pixels.shape[-2:]
        pixels = torch.nn.functional.pad(pixels, (0, side - width, 0, side - height))[None]
        with (cancel_between(self.model.image_encoder.blocks, cancel), torch.inference_mode(),
              autocast(self.device, self.encoder_dtype)):
            embedding = self.model.image_encoder(pixels)
        return embedding.float(), (int(height), int(width))

    def stroke_logits(self, embedding: Any, input_size: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
        """Stroke logits ``[H, W]`` float32 for the encoded image at its original size (> 0: text)."""
        import torch

        with torch.inference_mode():
            tokens = self.model.modal_aligner(embedding)
            logits = self.model.mask_decoder.strokes(embedding, self.model.prompt_encoder.get_dense_pe(), tokens)
            return self._to_original(logits, input_size, original)[0, 0].cpu().numpy()

    def levels(self, embedding: Any, points: np.ndarray,
               regions: list[tuple[int, int, int, int] | None] | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For points ``[N, 2]`` (x, y in the input frame): word / line / paragraph logits ``[N, 3, 256, 256]``,
        their predicted IoU ``[N, 3]``, and words-of-the-line logits ``[N, 384, 384]`` (input frame; the costly
        part, so it can be limited per point to ``regions`` ``(y0, y1, x0, x1)`` of the 256² frame — e.g. its
        line's box — the rest very negative, or put off: :meth:`levels_and_word_inputs`)."""
        import torch

        self._require_hierarchy()
        with torch.inference_mode():
            sparse = self._point_prompts(points)
            with autocast(self.device, self.encoder_dtype):
                masks, iou, word_logits = self.model.hi_decoder.levels(
                    embedding, self.model.prompt_encoder.get_dense_pe(), sparse, regions=regions)
            return masks.float().cpu().numpy(), iou.float().cpu().numpy(), word_logits[:, 0].float().cpu().numpy()

    def levels_and_word_inputs(self, embedding: Any, points: np.ndarray,
                               ) -> tuple[np.ndarray, np.ndarray, list[WordInputs]]:
        """As :meth:`levels` without words, and per point what :meth:`words_of` needs to give its line's words
        later without decoding the point again (the costly part of a line's words on a CPU): views of the
        batch's tensors, to be used at once or kept through :meth:`word_inputs_for`."""
        import torch

        self._require_hierarchy()
        with torch.inference_mode():
            sparse = self._point_prompts(points)
            with autocast(self.device, self.encoder_dtype):
                masks, iou, source, hyper = self.model.hi_decoder.levels_and_word_inputs(
                    embedding, self.model.prompt_encoder.get_dense_pe(), sparse)
            grid = tuple(embedding.shape[-2:])
            inputs = [WordInputs(source[i], hyper[i], grid) for i in range(len(points))]  # type: ignore[arg-type]
            return masks.float().cpu().numpy(), iou.float().cpu().numpy(), inputs

    def word_inputs_for(self, inputs: WordInputs, region: tuple[int, int, int, int]) -> WordInputs:
        """A copy of what the words of ``region`` (y0, y1, x0, x1 of the 256² mask frame, e.g. a line's box) need
        from ``inputs`` (all of a point's tokens): the tokens under the region and the border the word branch
        reads (a line's are a small part of the 4 MB), in the precision the upscaling convolutions compute in
        anyway (autocast casts their input), so the words are the same as from all the tokens."""
        from engine.models.hi_sam_modules import word_tokens

        if inputs.box is not None:
            raise ValueError("word_inputs_for takes a point's whole decode (levels_and_word_inputs).")
        box = word_tokens(region, inputs.grid) or (0, 0, 0, 0)
        row0, row1, column0, column1 = box
        tokens = inputs.source.reshape(*inputs.grid, -1)[row0:row1, column0:column1]
        return WordInputs(tokens.reshape(-1, tokens.shape[-1]).to(dtype=self.encoder_dtype, copy=True),
                          inputs.hyper.clone(), inputs.grid, box)

    def words_of(self, inputs: list[WordInputs], regions: list[tuple[int, int, int, int] | None] | None = None,
                 ) -> np.ndarray:
        """Words-of-the-line logits ``[N, 384, 384]`` for points decoded by :meth:`levels_and_word_inputs`: the
        values :meth:`levels` gives them (``regions`` as there)."""
        import torch

        if not inputs:
            return np.zeros((0, 384, 384), np.float32)
        whole = regions is None and all(i.box is None for i in inputs)
        with torch.inference_mode(), autocast(self.device, self.encoder_dtype):
            source = torch.stack([i.source for i in inputs]) if whole else [i.source for i in inputs]
            words = self.model.hi_decoder.words(source, torch.stack([i.hyper for i in inputs]), inputs[0].grid,
                                                None if whole else regions or [None] * len(inputs),
                                                [i.box for i in inputs])
            return words[:, 0].float().cpu().numpy()

    def _require_hierarchy(self) -> None:
        if self.model.hi_decoder is None:
            raise NotAWeightsFile("This Hi-SAM file segments text strokes only (a SAM-TS checkpoint); words, "
                                  "lines and paragraphs need the full Hi-SAM file (hi_sam_b.pth, …).")

    def _point_prompts(self, points: np.ndarray) -> Any:
        """Points ``[N, 2]`` of the input frame → the prompt encoder's sparse embeddings ``[N, 2, C]``."""
        import torch

        coords = torch.as_tensor(points, dtype=torch.float32, device=self.device)[:, None, :]
        labels = torch.ones(len(points), 1, dtype=torch.int, device=self.device)
        sparse, _dense = self.model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        return sparse

    def _to_original(self, logits: Any, input_size: tuple[int, int], original: tuple[int, int]) -> Any:
        import torch.nn.functional as F

        side = self.input_side
        logits = F.interpolate(logits, (side, side), mode="bilinear", align_corners=False)
        logits = logits[..., : input_size[0], : input_size[1]]
        return F.interpolate(logits, original, mode="bilinear", align_corners=False)


def load(files: ModelFiles, device: str) -> HiSamNetwork:
    hi_sam_name = files.spec.weights_file
    own = read_state_dict(files.path(hi_sam_name))
    (sam_files,) = files.requirements.values()
    sam_name = next(name for name in sam_files.files)
    sam = read_state_dict(sam_files.path(sam_name))
    _check_sizes_agree(own, sam, hi_sam_name, sam_name)
    merged = {**sam, **own}  # the Hi-SAM file's weights win; SAM supplies the frozen rest
    try:
        architecture = HiSamArchitecture.from_weights(merged)
    except (KeyError, ValueError, IndexError) as error:
        raise NotAWeightsFile(f"{hi_sam_name} is not a Hi-SAM checkpoint (no {error}).") from error
    model = build_without_init(architecture.build)
    fill_from(model, merged, "Hi-SAM")
    model.eval().to(device)
    digest = hashlib.sha256(f"{files.checksum(hi_sam_name)}+{sam_files.files[sam_name]['sha256']}".encode())
    return HiSamNetwork(model, architecture, device, half_precision_for(device, half_on_cpu=HALF_ON_CPU),
                        digest.hexdigest(),
                        size_in_bytes(model))


def verify_files(spec: Any, folder: Any) -> None:
    """At import: the file must hold Hi-SAM's own weights (its adapters and the S-Decoder's high-resolution
    branch), not SAM's or another model's. Shapes are checked against SAM when the model loads."""
    name = spec.weights_file
    weights = read_state_dict(folder / name)
    missing = [key for key in ("image_encoder.blocks.0.Space_Adapter.D_fc1.weight",
                               "mask_decoder.output_upscaling_hr.0.weight", "modal_aligner.conv.0.weight")
               if key not in weights]
    if missing:
        looks_like_sam = "image_encoder.patch_embed.proj.weight" in weights
        raise NotAWeightsFile(f"This file is not a Hi-SAM checkpoint (it has no {missing[0].split('.')[0]} "
                              f"weights{'; it looks like Segment Anything itself' if looks_like_sam else ''}). "
                              "Import hi_sam_b.pth, hi_sam_l.pth or hi_sam_h.pth from the Hi-SAM authors.")


def _check_sizes_agree(own: dict[str, Any], sam: dict[str, Any], own_name: str, sam_name: str) -> None:
    """The adapters' width must be SAM's encoder width: a ViT-L Hi-SAM file over a ViT-B SAM cannot work."""
    adapter = own.get("image_encoder.blocks.0.Space_Adapter.D_fc1.weight")
    encoder = sam.get("image_encoder.patch_embed.proj.weight")
    if adapter is None:
        raise NotAWeightsFile(f"{own_name} is not a Hi-SAM checkpoint (it has no image-encoder adapters).")
    if encoder is not None and adapter.shape[1] != encoder.shape[0]:
        raise NotAWeightsFile(f"{own_name} was trained on a ViT of width {adapter.shape[1]}, but {sam_name} is a "
                              f"ViT of width {encoder.shape[0]}: the Hi-SAM and SAM files are of different sizes.")


def probe(network: HiSamNetwork) -> str:
    """Strokes and one point's levels on a blank image (``models check``)."""
    blank = np.full((network.input_side // 2, network.input_side, 3), 255, np.uint8)
    embedding, input_size = network.encode(blank)
    strokes = network.stroke_logits(embedding, input_size, blank.shape[:2])
    said = f"stroke logits {list(strokes.shape)}"
    if network.architecture.hierarchy:
        masks, iou, words = network.levels(embedding, np.array([[input_size[1] / 2, input_size[0] / 2]]))
        said += f", levels {list(masks.shape)} with IoU {[round(float(v), 3) for v in iou[0]]}, words {list(words.shape)}"
    return said
