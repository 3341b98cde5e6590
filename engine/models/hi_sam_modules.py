"""Hi-SAM's torch modules, written for Marginalia on top of ``segment_anything``'s (Ye et al., Hi-SAM, TPAMI 2024;
the authors' code is Apache-2.0, github.com/ymy-k/Hi-SAM; see ``docs/`` and ``../shared/docs/hisam.md``).

Hi-SAM is SAM with four changes, and parameter names that are the checkpoints' contract:

* every image-encoder block gains a ``Space_Adapter`` (on the attention output, with its own residual) and
  an ``MLP_Adapter`` (beside the MLP, scaled by 0.5), bottleneck MLPs ``D_fc1``/``D_fc2`` of width dim/4;
* a ``modal_aligner`` turns the image embedding into 12 prompt tokens (no user prompt for strokes);
* the ``mask_decoder`` (S-Decoder) adds a high-resolution branch: stroke logits at 4× the low-res mask;
* the ``hi_decoder`` (H-Decoder), fed with point prompts, gives word / line / paragraph masks and a
  "words of this line" mask at 384².

Shapes for the published models (input side S = 1024, patch 16, prompt width C = 256):
image ``[B, 3, S, S]`` → embedding ``[B, C, 64, 64]``; aligner → tokens ``[B, 12, C]``;
S-Decoder → low-res masks ``[B, 1, 256, 256]``, stroke logits ``[B, 1, 1024, 1024]``;
H-Decoder on N points → masks ``[N, 3, 256, 256]`` (word, line, paragraph), IoU ``[N, 3]``,
word masks ``[N, 1, 384, 384]``.
"""

from __future__ import annotations

from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.image_encoder import Block, window_partition, window_unpartition
from segment_anything.modeling.mask_decoder import MLP
from torch import nn
from torch.nn import functional as F

from engine.models.token_upscaling import token_masks, upscaled_features
from engine.models.two_way import two_way

WORD_MASK_SIDE = 384
WORD_MARGIN = 4  # pixels of the 256² frame read around a region (6 at 384²)
WORD_OUTSIDE = -1e4  # word logits outside a point's region
MLP_ADAPTER_SCALE = 0.5


class Adapter(nn.Module):
    """A bottleneck MLP ``[..., D] → [..., D]`` (hidden D/4, GELU); with ``skip`` it adds its input."""

    def __init__(self, width: int, skip: bool = True) -> None:
        super().__init__()
        self.skip = skip
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(width, width // 4)  # noqa: N815 - the checkpoints' names
        self.D_fc2 = nn.Linear(width // 4, width)  # noqa: N815

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.D_fc2(self.act(self.D_fc1(x)))
        return x + out if self.skip else out


class AdaptedBlock(Block):
    """SAM's ViT block with Hi-SAM's two adapters; ``[B, H, W, D] → [B, H, W, D]``."""

    def __init__(self, dim: int, **kwargs: object) -> None:
        super().__init__(dim, **kwargs)  # type: ignore[arg-type]
        self.Space_Adapter = Adapter(dim)  # noqa: N815
        self.MLP_Adapter = Adapter(dim, skip=False)  # noqa: N815

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            height, width = x.shape[1], x.shape[2]
            x, padded = window_partition(x, self.window_size)
        x = self.Space_Adapter(self.attn(x))
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, padded, (height, width))
        x = shortcut + x
        normed = self.norm2(x)
        return x + self.mlp(normed) + MLP_ADAPTER_SCALE * self.MLP_Adapter(normed)


class AdaptedImageEncoder(ImageEncoderViT):
    """SAM's image encoder whose blocks carry adapters: ``[B, 3, S, S] → [B, C, S/16, S/16]``."""

    def __init__(self, *, img_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int,
                 mlp_ratio: float, out_chans: int, window_size: int, global_attn_indexes: tuple[int, ...]) -> None:
        norm = partial(nn.LayerNorm, eps=1e-6)
        super().__init__(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, out_chans=out_chans, qkv_bias=True,
                         norm_layer=norm, use_rel_pos=True, window_size=window_size,
                         global_attn_indexes=global_attn_indexes)
        grid = img_size // patch_size
        self.blocks = nn.ModuleList(
            AdaptedBlock(embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm,
                         use_rel_pos=True, window_size=0 if i in global_attn_indexes else window_size,
                         input_size=(grid, grid))
            for i in range(depth))


class AlignerBlock(nn.Module):
    """Self-attention over the prompt tokens, cross-attention to the image, FFN: ``[B, T, C] → [B, T, C]``."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, width * 4), nn.GELU(), nn.Linear(width * 4, width))

    def forward(self, tokens: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        tokens = self.norm1(tokens + self.self_attn(tokens, tokens, tokens)[0])
        pixels = image.flatten(2).transpose(1, 2)  # [B, H*W, C]
        tokens = tokens + self.cross_attn(tokens, pixels, pixels)[0]
        return tokens + self.ffn(self.norm2(tokens))


class ModalAligner(nn.Module):
    """Self-prompting: ``[B, C, h, w]`` embedding → ``[B, T, C]`` tokens (T = 12 published), each the mean of
    the embedding weighted by one learned spatial attention map."""

    def __init__(self, width: int, tokens: int, layers: int, heads: int = 8) -> None:
        super().__init__()
        self.tokens = tokens
        self.conv = nn.Sequential(
            nn.Conv2d(width, tokens, 3, padding=1, bias=False), nn.GELU(),
            nn.Conv2d(tokens, tokens, 3, padding=1, bias=False), nn.GELU(),
            nn.Conv2d(tokens, tokens, 3, padding=1, bias=False), nn.GELU(),
            nn.Conv2d(tokens, tokens, 3, padding=1, bias=False))
        self.transformer_layers = nn.ModuleList(AlignerBlock(width, heads) for _ in range(layers))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        batch, channels = image.shape[:2]
        attention = torch.sigmoid(self.conv(image).reshape(batch, self.tokens, -1))[..., None]  # [B, T, h*w, 1]
        features = image.reshape(batch, channels, -1).transpose(1, 2)[:, None]  # [B, 1, h*w, C]
        tokens = (features * attention).mean(dim=2)  # [B, T, C]
        for layer in self.transformer_layers:
            tokens = layer(tokens, image)
        return tokens


def _refinement(width: int, upscale: bool) -> nn.Sequential:
    """The Hi-SAM high-resolution heads: (optionally two 2× transposed convolutions, then) four 3×3 convs."""
    act = nn.GELU
    layers: list[nn.Module] = []
    if upscale:
        layers += [nn.ConvTranspose2d(width * 2, width, 2, stride=2), LayerNorm2d(width), act(),
                   nn.ConvTranspose2d(width, width, 2, stride=2), LayerNorm2d(width), act()]
    for index in range(4):
        layers.append(nn.Conv2d(width, width, 3, padding=1))
        layers += [LayerNorm2d(width), act()] if index < 3 else [act()]
    return nn.Sequential(*layers)


BAND_ROWS = 128  # output rows a band of a high-resolution head computes at once


def in_bands(layers: nn.Sequential, x: torch.Tensor, rows: int = BAND_ROWS) -> torch.Tensor:
    """``layers(x)`` for a head of 3×3 (padding 1) and 1×1 convolutions, channel layer norms and GELUs on
    ``x [N, C, H, W]``, computed ``rows`` output rows at a time: each band reads as many rows more on each side as
    there are 3×3 convolutions, so its rows are exactly the whole's. The S-Decoder's head works on 16 channels at
    1024²: a band's intermediates stay in cache where the whole's go through memory at every layer (its four 3×3
    layers on 2 cores: 540–660 ms whole, 280–490 ms in bands)."""
    reach = 0  # input rows an output row depends on, each side
    for layer in layers:
        if isinstance(layer, (LayerNorm2d, nn.GELU)):
            continue
        padding = getattr(layer, "padding", None)
        same_size = isinstance(layer, nn.Conv2d) and isinstance(padding, tuple) and layer.stride == (1, 1) and \
            layer.dilation == (1, 1) and layer.kernel_size == tuple(2 * side + 1 for side in padding)
        if not same_size:
            raise TypeError(f"in_bands computes per-pixel layers and same-size convolutions, not {layer}")
        reach += padding[0]  # type: ignore[index]
    height = x.shape[-2]
    if height <= rows:
        return layers(x)
    bands = []
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        start, end = max(0, top - reach), min(height, bottom + reach)
        bands.append(layers(x[..., start:end, :])[..., top - start:bottom - start, :])
    return torch.cat(bands, dim=-2)


class _TokenDecoder(MaskDecoder):
    """SAM's mask decoder run to its token outputs, image tokens and masks."""

    def transform(self, image: torch.Tensor, position: torch.Tensor, prompts: torch.Tensor,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """image ``[1, C, h, w]``, prompts ``[N, P, C]`` → the output tokens ``[N, 1 + M, C]`` (IoU, then the M mask
        tokens; M = multimask outputs + 1) and the image tokens ``[N, h·w, C]`` after the two-way transformer."""
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens[None].expand(prompts.size(0), -1, -1), prompts), dim=1)
        hidden, source = two_way(self.transformer, image, position, tokens)  # the image once for all prompts
        return hidden[:, :1 + self.num_mask_tokens], source

    def decode(self, image: torch.Tensor, position: torch.Tensor, prompts: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`transform`, then masks ``[N, M, 4h, 4w]`` (upscaled token by token, never as features),
        IoU ``[N, M]``, the mask tokens ``[N, M, C]`` and the image tokens ``[N, h·w, C]``."""
        hidden, source = self.transform(image, position, prompts)
        mask_tokens = hidden[:, 1:]
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        masks = token_masks(self.output_upscaling, source, tuple(image.shape[-2:]), hyper)
        return masks, self.iou_prediction_head(hidden[:, 0]), mask_tokens, source

    def upscale(self, source: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Image tokens ``[N, h·w, C]`` of a ``grid`` (h, w) → upscaled features ``[N, C/8, 4h, 4w]``."""
        return upscaled_features(self.output_upscaling, source, grid)


class StrokeDecoder(_TokenDecoder):
    """S-Decoder: SAM's decoder plus the high-resolution stroke branch."""

    def __init__(self, *, transformer_dim: int, **kwargs: object) -> None:
        super().__init__(transformer_dim=transformer_dim, **kwargs)  # type: ignore[arg-type]
        self.output_upscaling_hr = _refinement(transformer_dim // 16, upscale=True)
        self.output_hypernetworks_mlps_hr = MLP(transformer_dim, transformer_dim, transformer_dim // 16, 3)
        depth = len(self.iou_prediction_head.layers)
        self.iou_prediction_head_hr = MLP(transformer_dim, self.iou_prediction_head.layers[0].out_features, 1, depth)

    def strokes(self, image: torch.Tensor, position: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """image ``[1, C, h, w]``, aligner tokens ``[1, T, C]`` → stroke logits ``[1, 1, 16h, 16w]``."""
        hidden, source = self.transform(image, position, prompts)  # SAM's own masks are not read
        head = self.output_upscaling_hr
        first_conv = next(index for index, layer in enumerate(head) if isinstance(layer, nn.Conv2d))
        upscaling, refinement = head[:first_conv], head[first_conv:]  # the transposed convolutions; the 3×3 ones
        upscaled = in_bands(refinement, upscaling(self.upscale(source, image.shape[-2:])))
        hyper = self.output_hypernetworks_mlps_hr(hidden[:, 1])[:, None]  # [1, 1, C/16]
        b, c, h, w = upscaled.shape
        return (hyper @ upscaled.view(b, c, h * w)).view(b, 1, h, w)


class HierarchyDecoder(_TokenDecoder):
    """H-Decoder: for point prompts, word / line / paragraph masks and the words of each line."""

    def __init__(self, *, transformer_dim: int, **kwargs: object) -> None:
        super().__init__(transformer_dim=transformer_dim, **kwargs)  # type: ignore[arg-type]
        narrow = transformer_dim // 16
        self.word_mask_dc = nn.Sequential(nn.Conv2d(transformer_dim // 8, narrow, 1), LayerNorm2d(narrow), nn.GELU())
        self.word_mask_refine = _refinement(narrow, upscale=False)
        self.output_word_mlp = MLP(transformer_dim, transformer_dim, narrow, 3)

    def levels(self, image: torch.Tensor, position: torch.Tensor, prompts: torch.Tensor,
               regions: list[tuple[int, int, int, int] | None] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """image ``[1, C, h, w]``, point embeddings ``[N, P, C]`` → masks ``[N, 3, 4h, 4w]`` (word, line,
        paragraph logits), IoU ``[N, 3]``, and words-of-the-line logits ``[N, 1, 384, 384]``.

        ``regions`` (one per point, ``(y0, y1, x0, x1)`` of the ``4h × 4w`` mask frame, ``None``: all of it)
        limits each point's words to that part of the frame, the rest ``WORD_OUTSIDE``: the word branch runs
        on the region only (plus a border its convolutions need), giving there the very values of the whole."""
        masks, iou, mask_tokens, source = self.decode(image, position, prompts)
        return masks[:, 1:], iou[:, 1:], self.words(source, self.output_word_mlp(mask_tokens[:, 1:2]),
                                                    tuple(image.shape[-2:]), regions)

    def levels_and_word_inputs(self, image: torch.Tensor, position: torch.Tensor, prompts: torch.Tensor,
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`levels` without the words, and what :meth:`words` needs to give them later without decoding
        again: the image tokens after the two-way transformer ``[N, h·w, C]`` and word hyper-weights
        ``[N, 1, C/16]``."""
        masks, iou, mask_tokens, source = self.decode(image, position, prompts)
        return masks[:, 1:], iou[:, 1:], source, self.output_word_mlp(mask_tokens[:, 1:2])

    def words(self, source: torch.Tensor | list[torch.Tensor], hyper: torch.Tensor, grid: tuple[int, int],
              regions: list[tuple[int, int, int, int] | None] | None = None,
              boxes: list[tuple[int, int, int, int] | None] | None = None) -> torch.Tensor:
        """Words-of-the-line logits ``[N, 1, 384, 384]`` from :meth:`levels_and_word_inputs`'s ``source``
        ``[N, h·w, C]`` and ``hyper`` ``[N, 1, C/16]`` on the image's ``grid`` (h, w): what :meth:`levels` gives.

        With ``regions``, only the image tokens under each region (and the border the word branch reads,
        :func:`word_tokens`) are upscaled: the upscaling never mixes tokens (``engine.models.token_upscaling``), so
        the values there are those of the whole frame's. ``source`` may then hold per line only the tokens of
        ``boxes[i]`` (row0, row1, column0, column1 of the grid, ``[rows·columns, C]``; ``None``: all), which must
        include those its region needs."""
        if regions is None:
            return self._word_logits(self.upscale(source, grid), hyper)  # type: ignore[arg-type]
        height, width = 4 * grid[0], 4 * grid[1]
        reference = source[0] if len(source) else hyper
        word_masks = reference.new_full((len(regions), 1, WORD_MASK_SIDE, WORD_MASK_SIDE), WORD_OUTSIDE)
        for index, region in enumerate(regions):
            region = region or (0, height, 0, width)
            frame = word_frame(region, grid)
            if frame is None:
                continue  # an empty region: no words
            top, bottom, left, right = frame
            row0, row1, column0, column1 = needed = _frame_tokens(frame)
            held = (boxes[index] if boxes is not None else None) or (0, grid[0], 0, grid[1])
            if not holds(held, needed):
                raise ValueError(f"The image tokens kept for line {index} ({held}) do not cover its region {region}.")
            channels = source[index].shape[-1]
            tokens = source[index].reshape(held[1] - held[0], held[3] - held[2], channels)[
                row0 - held[0]:row1 - held[0], column0 - held[2]:column1 - held[2]].reshape(1, -1, channels)
            upscaled = self.upscale(tokens, (row1 - row0, column1 - column0))
            upscaled = upscaled[..., top - 4 * row0:bottom - 4 * row0, left - 4 * column0:right - 4 * column0]
            size = (3 * (bottom - top) // 2, 3 * (right - left) // 2)
            part = self._word_logits(upscaled, hyper[index:index + 1], size)
            y0, y1, x0, x1 = region
            keep_y0, keep_y1 = 3 * max(y0, 0) // 2, -(-3 * min(y1, height) // 2)
            keep_x0, keep_x1 = 3 * max(x0, 0) // 2, -(-3 * min(x1, width) // 2)
            word_masks[index, :, keep_y0:keep_y1, keep_x0:keep_x1] = part[
                0, :, keep_y0 - 3 * top // 2:keep_y1 - 3 * top // 2, keep_x0 - 3 * left // 2:keep_x1 - 3 * left // 2]
        return word_masks

    def _word_logits(self, upscaled: torch.Tensor, hyper: torch.Tensor,
                     size: tuple[int, int] = (WORD_MASK_SIDE, WORD_MASK_SIDE)) -> torch.Tensor:
        """Upscaled features ``[N, C/8, h, w]`` and word hyper-weights ``[N, 1, C/16]`` → word logits
        ``[N, 1, *size]`` (size = 3/2 of h, w: the 256 → 384 frame)."""
        # Not in bands: at 384² a head's intermediates fit in cache (in bands: 24–30 ms → 32–35 ms a line, bf16)
        words_map = self.word_mask_refine(F.interpolate(self.word_mask_dc(upscaled), size, mode="bilinear",
                                                        align_corners=False))
        b, c, h, w = words_map.shape
        return (hyper @ words_map.view(b, c, h * w)).view(b, 1, h, w)


def word_frame(region: tuple[int, int, int, int], grid: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The part ``(top, bottom, left, right)`` of the ``4h × 4w`` mask frame the words of ``region`` (y0, y1, x0, x1)
    are computed on, or ``None`` for an empty region. Even bounds keep the 2:3 resampling on the whole frame's
    grid; the margin covers what the resampling and the four 3×3 convolutions read beyond the region (6 px at
    384² > 1 + 4). Grows with the region: a larger region's frame holds a smaller one's."""
    height, width = 4 * grid[0], 4 * grid[1]
    y0, y1, x0, x1 = region
    if y1 <= y0 or x1 <= x0:
        return None
    top, left = max(0, (y0 - WORD_MARGIN) // 2 * 2), max(0, (x0 - WORD_MARGIN) // 2 * 2)
    bottom, right = min(height, -(-(y1 + WORD_MARGIN) // 2) * 2), min(width, -(-(x1 + WORD_MARGIN) // 2) * 2)
    if bottom <= top or right <= left:
        return None
    return top, bottom, left, right


def word_tokens(region: tuple[int, int, int, int], grid: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The image tokens ``(row0, row1, column0, column1)`` of ``grid`` the words of ``region`` are made from (each
    token gives 4×4 pixels of the mask frame), or ``None`` for an empty region."""
    frame = word_frame(region, grid)
    return None if frame is None else _frame_tokens(frame)


def holds(box: tuple[int, int, int, int], needed: tuple[int, int, int, int] | None) -> bool:
    """Whether the image tokens of ``box`` include those of ``needed`` (``None``: none are needed)."""
    return needed is None or (box[0] <= needed[0] and needed[1] <= box[1] and box[2] <= needed[2] and
                              needed[3] <= box[3])


def _frame_tokens(frame: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    top, bottom, left, right = frame
    return top // 4, -(-bottom // 4), left // 4, -(-right // 4)


class ChannelLayerNorm(LayerNorm2d):
    """SAM's ``LayerNorm2d`` (over the channels of ``[N, C, H, W]``) as one fused ``layer_norm`` on a channels-last
    view: the same values (within 3e-6 in float32) in a half to a fifth of the time on a CPU, and under bf16
    autocast computed in float32 where SAM's own sums in bf16 (measured on the decoders' 64×128² … 16×576²)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def use_fused_layer_norms(model: nn.Module) -> nn.Module:
    """Every ``LayerNorm2d`` of ``model`` computed as :class:`ChannelLayerNorm` (same parameters, same names)."""
    for module in model.modules():
        if type(module) is LayerNorm2d:
            module.__class__ = ChannelLayerNorm
    return model


class HiSam(nn.Module):
    """The whole model; ``hi_decoder`` is ``None`` for stroke-only checkpoints (SAM-TS)."""

    def __init__(self, image_encoder: AdaptedImageEncoder, modal_aligner: ModalAligner, prompt_encoder: PromptEncoder,
                 mask_decoder: StrokeDecoder, hi_decoder: HierarchyDecoder | None) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.modal_aligner = modal_aligner
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.hi_decoder = hi_decoder
