"""SAM's mask upscaling run image token by image token.

SAM's decoder upscales its image tokens ``[N, h·w, C]`` 4× with two 2×2, stride-2 transposed convolutions
(``C → C/4 → C/8``, a channel layer norm and GELU between, GELU after) and makes each mask the product of its
hyper-weights ``[C/8]`` with the ``[C/8, 4h, 4w]`` features. Nothing in that mixes image tokens: token (i, j)
alone gives the 4 × 4 pixels (4i + 2a + c, 4j + 2b + d) of every mask. So it is a small network applied to each
token — two products, a layer norm, two GELUs, the hyper product — and here, on a CPU, it runs on a band of
token rows at a time (2,048 tokens), whose intermediates stay in the processor's cache instead of four page-sized
tensors (``[N, C/8, 4h, 4w]``, 8 MB a prompt for the published models) going through memory once per step:
H-Decoder, 4 prompts, 2 cores, float32: 40–61 ms → 26–28 ms for this part (measured alone), the same values to
float rounding. A GPU computes it all at once, as segment-anything does. The ONNX click graphs
(``engine.segmentation.graphs``) run the same per-token form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

TOKENS_AT_ONCE = 2048  # 2 MB of first-product output in float32: the intermediates stay in cache


def upscaling_matrix(weight: Any) -> Any:
    """A 2×2, stride-2 ``ConvTranspose2d`` weight ``[in, out, 2, 2]`` as the per-pixel product it is: ``[in, (a, b,
    out)]``, output (2i+a, 2j+b) of input (i, j) (SAM's and SAM 2's upscalings, run per image token)."""
    return weight.detach().permute(0, 2, 3, 1).reshape(weight.shape[0], -1).clone()


def token_masks(upscaling: Any, source: torch.Tensor, grid: tuple[int, int], hyper: torch.Tensor) -> torch.Tensor:
    """SAM's ``output_upscaling`` (``ConvTranspose2d, LayerNorm2d, GELU, ConvTranspose2d, GELU``) on image tokens
    ``source [N, h·w, C]`` of a ``grid`` (h, w), multiplied by each prompt's ``hyper [N, M, C/8]`` → mask logits
    ``[N, M, 4h, 4w]``: ``hyper @ upscaling(source as [N, C, h, w])`` computed a band of token rows at a time.

    Within a band, the first product's outputs are put in (a, j, b) order and the second product is made once per
    c, so that each mask's logits come out as whole pixel rows 4i + 2a + c, in place (a transpose of the ``[M]``
    innermost result instead costs as much as the products)."""
    first, norm, first_act, second, second_act = upscaling
    if not (isinstance(first_act, torch.nn.GELU) and isinstance(second_act, torch.nn.GELU)):
        raise TypeError("token_masks computes SAM's upscaling, whose activations are GELU")
    if source.device.type != "cpu":  # a GPU's memory keeps up; a band at a time would be thousands of launches
        return all_at_once(upscaling, source, grid, hyper)
    count = source.shape[0]
    height, width = grid
    if count == 0:
        return source.new_empty(0, hyper.shape[1], 4 * height, 4 * width)
    middle, last = first.weight.shape[1], second.weight.shape[1]
    first_matrix, first_bias = upscaling_matrix(first.weight), first.bias.repeat(4)
    by_c = upscaling_matrix(second.weight).view(middle, 2, 2 * last)  # columns (c, (d, channel))
    second_matrices, second_bias = [by_c[:, c].contiguous() for c in range(2)], second.bias.repeat(2)
    band = max(1, TOKENS_AT_ONCE // width)
    masks: torch.Tensor | None = None
    for prompt in range(count):
        for row in range(0, height, band):
            rows = min(band, height - row)
            x = torch.addmm(first_bias, source[prompt, row * width:(row + rows) * width], first_matrix)
            x = F.gelu(F.layer_norm(x.view(-1, middle), (middle,), norm.weight, norm.bias, norm.eps))
            x = x.view(rows, width, 2, 2, middle).transpose(1, 2).reshape(-1, middle)  # (i, a, j, b)
            for c, matrix in enumerate(second_matrices):
                y = F.gelu(torch.addmm(second_bias, x, matrix)).view(-1, last)  # (i, a, j, b, d)
                logits = (hyper[prompt] @ y.T).view(-1, rows, 2, 4 * width)  # [M, i, a, 4w]
                if masks is None:
                    masks = logits.new_empty(count, logits.shape[0], height, 2, 2, 4 * width)  # rows (i, a, c)
                masks[prompt, :, row:row + rows, :, c] = logits
    assert masks is not None
    return masks.view(count, -1, 4 * height, 4 * width)


def all_at_once(upscaling: Any, source: torch.Tensor, grid: tuple[int, int], hyper: torch.Tensor) -> torch.Tensor:
    """What :func:`token_masks` computes, as segment-anything does: the features ``[N, C/8, 4h, 4w]`` of every
    prompt, then each mask's product."""
    features = upscaled_features(upscaling, source, grid)
    return (hyper @ features.flatten(2)).view(len(source), -1, *features.shape[-2:])


def upscaled_features(upscaling: Any, source: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Image tokens ``[N, h·w, C]`` of a ``grid`` (h, w) through ``upscaling`` as features ``[N, C', 4h, 4w]``."""
    count, _, channels = source.shape
    return upscaling(source.transpose(1, 2).reshape(count, channels, *grid))
