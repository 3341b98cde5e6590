"""SAM's prompt encoder and mask decoder as traceable modules, split for speed.

A click is decoded without a previous mask most of the time, and then part of
the first transformer layer depends on the image alone: the image side's key,
value and query projections. ``PrepareGraph`` computes them once per page;
``PromptGraph`` reuses them for every click (a quarter less work per click).
``FullGraph`` is segment-anything's own computation (via its ONNX helper), used
when a previous mask is given. All three hold one float32 CPU copy of the two
small parts (about 4 M weights): they neither move nor share the loaded model.

Shapes (C = 256, T = 64·64 image tokens, N prompt points):
``PrepareGraph``: embedding ``[1, C, 64, 64]`` → ``keys [1, T, C]``, projections ``[1, 8, T, C/16]`` ×3
(``two_way.PreparedImage``);
``PromptGraph``: those + points ``[1, N, 2]``, labels ``[1, N]`` → logits ``[T, 4, 4, 4]`` in token order
(see :func:`unblock_masks`), IoU ``[1, 4]``;
``FullGraph``: embedding, points, labels, mask ``[1, 1, 256, 256]``, flag ``[1]`` → the same.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

PREPARED_OUTPUTS = ("keys", "token_to_image_k", "token_to_image_v", "image_to_token_q")


def unblock_masks(blocked: np.ndarray, grid: int = 64) -> np.ndarray:
    """The prompt graph's masks ``[T, 4, 4, M]`` (per image token and sub-pixel) → ``[M, 4·grid, 4·grid]``.

    Pass only the mask to show (``M = 1``), so that only it is moved into image order.
    """
    count = blocked.shape[-1]
    ordered = blocked.reshape(grid, grid, 2, 2, 2, 2, count).transpose(6, 0, 2, 4, 1, 3, 5)
    return ordered.reshape(count, 4 * grid, 4 * grid)


@dataclass(frozen=True, slots=True)
class DecoderGraphs:
    full: Any
    prepare: Any
    prompt: Any


@dataclass(frozen=True, slots=True)
class _InputSide:
    img_size: int


def decoder_graphs(sam: Any) -> DecoderGraphs:
    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    from engine.models.token_upscaling import upscaling_matrix
    from engine.models.two_way import Block, PreparedImage, Projections, prompt_two_way, stacked_mlps

    class Heads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prompt_encoder = copy.deepcopy(sam.prompt_encoder).float().cpu()
            self.mask_decoder = copy.deepcopy(sam.mask_decoder).float().cpu()
            self.image_encoder = _InputSide(sam.image_encoder.img_size)
            self.mask_threshold = sam.mask_threshold

    class FullGraph(SamOnnxModel):
        @torch.no_grad()
        def forward(self, image_embeddings: Any, point_coords: Any, point_labels: Any, mask_input: Any,
                    has_mask_input: Any) -> tuple[Any, Any]:
            return self.model.mask_decoder.predict_masks(
                image_embeddings=image_embeddings, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=self._embed_points(point_coords, point_labels),
                dense_prompt_embeddings=self._embed_masks(mask_input, has_mask_input))

    class PrepareGraph(torch.nn.Module):
        def __init__(self, heads: Heads) -> None:
            super().__init__()
            self.heads = heads

        @torch.no_grad()
        def forward(self, image_embeddings: Any) -> tuple[Any, Any, Any, Any]:
            encoder, decoder = self.heads.prompt_encoder, self.heads.mask_decoder
            source = image_embeddings + encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            keys = source.flatten(2).permute(0, 2, 1)
            prepared = PreparedImage.of(Block.of_sam(decoder.transformer.layers[0]), keys,
                                        encoder.get_dense_pe().flatten(2).permute(0, 2, 1))
            return keys, prepared.keys, prepared.values, prepared.queries

    class PromptGraph(SamOnnxModel):
        @torch.no_grad()
        def forward(self, keys: Any, token_to_image_k: Any, token_to_image_v: Any, image_to_token_q: Any,
                    point_coords: Any, point_labels: Any) -> tuple[Any, Any]:
            decoder = self.model.mask_decoder
            transformer = decoder.transformer
            output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
            tokens = torch.cat((output_tokens, self._embed_points(point_coords, point_labels)), dim=1)
            queries, keys = prompt_two_way(  # rows kept: the IoU and mask tokens
                [Block.of_sam(layer) for layer in transformer.layers],
                Projections.of(transformer.final_attn_token_to_image), transformer.norm_final_attn, tokens, keys,
                self.image_pe, PreparedImage(token_to_image_k, token_to_image_v, image_to_token_q),
                1 + decoder.num_mask_tokens)
            mask_tokens = queries[:, 1:1 + decoder.num_mask_tokens, :]
            hyper_in = stacked_mlps([list(mlp.layers) for mlp in decoder.output_hypernetworks_mlps], mask_tokens[0])
            return self.upscaling(keys.flatten(0, 1), hyper_in), decoder.iou_prediction_head(queries[:, 0, :])

    class TokenUpscaling(torch.nn.Module):
        """The decoder's output upscaling and mask product, computed per image token (same values).

        Each 2×2, stride-2 transposed convolution is a per-pixel linear map, and the
        layer norm and GELU act per pixel: so all of it runs as matrix products on
        the tokens (channels last), and only the final masks are put in image order.
        """

        def __init__(self, upscaling: Any) -> None:
            super().__init__()
            first, norm, _, second, _ = upscaling
            self.first = torch.nn.Parameter(upscaling_matrix(first.weight), requires_grad=False)
            self.first_bias = torch.nn.Parameter(first.bias.detach().repeat(4), requires_grad=False)
            self.second = torch.nn.Parameter(upscaling_matrix(second.weight), requires_grad=False)
            self.second_bias = torch.nn.Parameter(second.bias.detach().repeat(4), requires_grad=False)
            self.norm_weight, self.norm_bias, self.eps = norm.weight, norm.bias, norm.eps
            self.middle = int(first.weight.shape[1])
            self.last = int(second.weight.shape[1])

        def forward(self, tokens: Any, hyper_in: Any) -> Any:
            gelu = torch.nn.functional.gelu
            x = (tokens @ self.first + self.first_bias).reshape(-1, 4, self.middle)  # [T, (a,b), C/4]
            x = gelu(torch.nn.functional.layer_norm(x, (self.middle,), self.norm_weight, self.norm_bias, self.eps))
            x = gelu(x @ self.second + self.second_bias).reshape(-1, 4, 4, self.last)  # [T, (a,b), (c,d), C/8]
            # [T, (a,b), (c,d), tokens]: put in image order outside, for the one mask shown (see unblock_masks)
            return x @ hyper_in.transpose(0, 1)

    heads = Heads()
    prompt = PromptGraph(heads, return_single_mask=False)
    prompt.upscaling = TokenUpscaling(heads.mask_decoder.output_upscaling)
    with torch.no_grad():  # a constant of the export, not recomputed for every click
        prompt.register_buffer("image_pe", heads.prompt_encoder.get_dense_pe().flatten(2).permute(0, 2, 1).contiguous())
    return DecoderGraphs(FullGraph(heads, return_single_mask=False).eval(),  # type: ignore[arg-type]
                         PrepareGraph(heads).eval(),
                         prompt.eval())  # type: ignore[arg-type]
