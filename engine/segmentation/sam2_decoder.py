"""SAM 2's prompt encoder and mask decoder as traceable graphs, run by ONNX Runtime or torch.

As for SAM (``graphs.py``), the image-only part of the first transformer layer
(the image side's key, value and query projections) is computed once per page
by ``Sam2PrepareGraph``, and ``Sam2PromptGraph`` reuses it for every click
without a previous mask; ``Sam2DecoderGraph`` computes everything, and serves
prompts with a previous mask. All give four outputs in the same order as SAM's (``decoder.Decoded``):
index 0 is SAM 2's single-mask answer, with its own fallback to the best of the
three candidates when the single mask is unstable (as SAM 2's predictor does),
and 1–3 are the three candidates for a lone click. It holds one float32 CPU copy
of the small parts (about 4 M weights), never the loaded model.

Shapes (C = 256, S = 1024): embedding ``[1, C, 64, 64]``, high-resolution features
``[1, 32, 256, 256]`` and ``[1, 64, 128, 128]``, points ``[1, N, 2]`` in input pixels,
labels ``[1, N]`` (1/0 points, 2/3 box corners, -1 padding), previous mask
``[1, 1, 256, 256]`` with flag ``[1]`` → logits ``[1, 4, 256, 256]``, IoU ``[1, 4]``.
Prepared (T = 64·64 tokens, c = C/2 per head group): keys ``[1, 1, T, C]``, projections
``[1, h, T, c/h]`` ×3, and the high-resolution maps in token order, the upscaling's biases added
(``[T, 4, 4, C/8]`` and ``[T, 4, C/4]``): the prompt graph upscales per token, as
``graphs.TokenUpscaling`` does for SAM, and returns its logits in token order ``[T, 4, 4, 4]``
(see ``graphs.unblock_masks``). Its attentions between the image and the prompt's tokens are folded
(``engine.models.two_way``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch  # this module is imported only where SAM 2 runs

from engine.models.derived import export_atomically, remove_older_versions
from engine.models.token_upscaling import upscaling_matrix
from engine.models.two_way import Block, PreparedImage, Projections, prompt_two_way, stacked_mlps, static_size
from engine.segmentation.decoder import GraphInputs

GRAPH_VERSION = 4
INPUTS = ("image_embeddings", "high_res_0", "high_res_1", "point_coords", "point_labels", "mask_input",
          "has_mask_input")
OUTPUTS = ("low_res_masks", "iou_predictions")
PREPARED = ("keys", "token_to_image_k", "token_to_image_v", "image_to_token_q", "high_res_0_blocked",
            "high_res_1_blocked")
PROMPT_INPUTS = (*PREPARED, "point_coords", "point_labels")


class Sam2DecoderGraph(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.prompt_encoder = copy.deepcopy(model.prompt_encoder).float().cpu()
        self.mask_decoder = copy.deepcopy(model.mask_decoder).float().cpu()
        with torch.no_grad():
            self.register_buffer("image_pe", model.get_image_wide_positional_embeddings().float().cpu().clone())
        self.eval()

    def forward(self, image_embeddings: Any, high_res_0: Any, high_res_1: Any, point_coords: Any,
                point_labels: Any, mask_input: Any, has_mask_input: Any) -> tuple[Any, Any]:
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        sparse = encoder._embed_points(point_coords[:, None], point_labels[:, None].long(), pad=False)  # [1,1,N,C]
        has_mask = has_mask_input.reshape(1, 1, 1, 1)
        dense = (has_mask * encoder.mask_embed(mask_input)
                 + (1 - has_mask) * encoder.no_mask_embed.weight.reshape(1, -1, 1, 1))
        output_tokens = torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight,
                                   decoder.mask_tokens.weight], dim=0)[None, None]
        tokens = torch.cat((output_tokens, sparse), dim=2)
        queries, keys = decoder.transformer(point_embeddings=tokens, image_embeddings=image_embeddings + dense,
                                            image_positional_embeddings=self.image_pe, attention_similarity=None)
        return _heads_out(decoder, queries, keys, high_res_0, high_res_1)


def _heads_out(decoder: Any, queries: Any, keys: Any, high_res_0: Any, high_res_1: Any) -> tuple[Any, Any]:
    """From the transformer's outputs (queries ``[1, 1, Q, C]``, keys ``[1, 1, T, C]``) to the four masks and
    their scores, with SAM 2's stability fallback for the single mask."""
    count = decoder.num_mask_tokens
    mask_tokens = queries[:, :, 2:2 + count, :]
    # the embedding grid is half the finer high-resolution map's
    image = keys.transpose(2, 3).reshape(1, keys.shape[-1], high_res_1.shape[-2] // 2, high_res_1.shape[-1] // 2)
    upscaled = decoder.activation(decoder.upscale_layer_norm(decoder.upscale_conv1(image) + high_res_1))
    upscaled = decoder.activation(decoder.upscale_conv2(upscaled) + high_res_0)
    hyper_in = torch.stack([mlp(mask_tokens[:, :, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
                           dim=2)  # [1, 1, 4, C/8]
    low_height, low_width = upscaled.shape[-2:]
    masks = (hyper_in @ upscaled.reshape(1, 1, -1, low_height * low_width)).reshape(1, 1, count, low_height,
                                                                                    low_width)
    scores = decoder.iou_prediction_head(queries[:, :, 1, :])  # [1, 1, 4]
    if decoder.dynamic_multimask_via_stability:
        single, single_score = decoder._dynamic_multimask_via_stability(masks, scores)
        masks = torch.cat([single, masks[:, :, 1:]], dim=2)
        scores = torch.cat([single_score, scores[:, :, 1:]], dim=2)
    return masks[:, 0], scores[:, 0]


def _block(layer: Any) -> Block:
    """A ``Sam2TwoWayAttentionBlock`` as :class:`engine.models.two_way.Block`."""
    return Block(Projections.of(layer.self_attn), (layer.layer_norm1, layer.layer_norm2, layer.layer_norm3,
                                                   layer.layer_norm4),
                 layer.mlp, Projections.of(layer.cross_attn_token_to_image),
                 Projections.of(layer.cross_attn_image_to_token), bool(layer.skip_first_layer_pe))


class Sam2PrepareGraph(torch.nn.Module):
    """Embedding ``[1, C, 64, 64]`` → the image side of the first layer (see the module's notes)."""

    def __init__(self, full: Sam2DecoderGraph) -> None:
        super().__init__()
        self.full = full

    def forward(self, image_embeddings: Any, high_res_0: Any, high_res_1: Any) -> tuple[Any, ...]:
        encoder, decoder = self.full.prompt_encoder, self.full.mask_decoder
        keys = (image_embeddings + encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)).flatten(2).transpose(1, 2)
        prepared = PreparedImage.of(_block(decoder.transformer.layers[0]), keys,
                                    self.full.image_pe.flatten(2).transpose(1, 2))
        grid_h, grid_w = image_embeddings.shape[-2], image_embeddings.shape[-1]
        # high_res_1[o, 2i+a, 2j+b] → [i·w+j, (a, b), o]; high_res_0[o, 4i+2a+c, 4j+2b+d] → [i·w+j, (a, b), (c, d), o]
        blocked_1 = high_res_1[0].reshape(-1, grid_h, 2, grid_w, 2).permute(1, 3, 2, 4, 0).reshape(
            grid_h * grid_w, 4, -1)
        blocked_0 = high_res_0[0].reshape(-1, grid_h, 2, 2, grid_w, 2, 2).permute(1, 4, 2, 5, 3, 6, 0).reshape(
            grid_h * grid_w, 4, 4, -1)
        # the upscaling's biases added here once, so that each click's products add the maps in the same pass
        blocked_1 = blocked_1 + decoder.upscale_conv1.bias.reshape(1, 1, -1)
        blocked_0 = blocked_0 + decoder.upscale_conv2.bias.reshape(1, 1, 1, -1)
        return keys[:, None], prepared.keys, prepared.values, prepared.queries, blocked_0, blocked_1


class Sam2PromptGraph(torch.nn.Module):
    """The prepared page + high-res maps + points → masks and scores (no previous mask)."""

    def __init__(self, full: Sam2DecoderGraph) -> None:
        super().__init__()
        self.full = full
        decoder = full.mask_decoder
        self.first = torch.nn.Parameter(upscaling_matrix(decoder.upscale_conv1.weight), requires_grad=False)
        self.second = torch.nn.Parameter(upscaling_matrix(decoder.upscale_conv2.weight), requires_grad=False)

    def forward(self, keys: Any, token_to_image_k: Any, token_to_image_v: Any, image_to_token_q: Any,
                high_res_0_blocked: Any, high_res_1_blocked: Any, point_coords: Any,
                point_labels: Any) -> tuple[Any, Any]:
        encoder, decoder = self.full.prompt_encoder, self.full.mask_decoder
        transformer = decoder.transformer
        sparse = encoder._embed_points(point_coords[:, None], point_labels[:, None].long(), pad=False)
        output_tokens = torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight,
                                   decoder.mask_tokens.weight], dim=0)[None, None]
        tokens = torch.cat((output_tokens, sparse), dim=2).flatten(0, 1)  # [1, Q, C]
        # flatten, not squeeze or indexing: the export's Squeeze and Gather copy the image tokens
        position = self.full.image_pe.flatten(2).transpose(1, 2)
        queries, keys = prompt_two_way(  # rows kept: the object, IoU and mask tokens
            [_block(layer) for layer in transformer.layers], Projections.of(transformer.final_attn_token_to_image),
            transformer.layer_norm_final_attn, tokens, keys.flatten(0, 1), position,
            PreparedImage(token_to_image_k, token_to_image_v, image_to_token_q), 2 + decoder.num_mask_tokens)
        return self._blocked_out(queries[:, None], keys.flatten(0, 1), high_res_0_blocked, high_res_1_blocked)

    def _blocked_out(self, queries: Any, tokens: Any, high_0: Any, high_1: Any) -> tuple[Any, Any]:
        """``_heads_out`` per image token: each 2×2 stride-2 transposed convolution is a per-pixel linear map,
        and the layer norm and GELU act per pixel, so it all runs as matrix products on the tokens
        ``[T, C]``; logits come out ``[T, 4, 4, 4]`` in token order (same values, ``unblock_masks``)."""
        decoder = self.full.mask_decoder
        gelu, norm = decoder.activation, decoder.upscale_layer_norm
        pixels, middle, last = static_size(tokens, 0), static_size(high_1, 2), static_size(high_0, 3)
        # one product adding the (biased) map each: [T, (a,b)·C/4], then [T·(a,b), (c,d)·C/8]
        x = torch.addmm(high_1.reshape(pixels, -1), tokens, self.first).reshape(pixels, 4, middle)
        x = gelu(torch.nn.functional.layer_norm(x, (middle,), norm.weight, norm.bias, norm.eps))
        x = gelu(torch.addmm(high_0.reshape(pixels * 4, -1), x.reshape(pixels * 4, middle), self.second)
                 .reshape(pixels, 4, 4, last))
        count = decoder.num_mask_tokens
        mask_tokens = queries[:, :, 2:2 + count, :]
        hyper_in = stacked_mlps([[mlp.proj_in, *mlp.layers, mlp.proj_out] for mlp in decoder.output_hypernetworks_mlps],
                                mask_tokens[0, 0])  # [4, C/8]
        masks = x @ hyper_in.transpose(0, 1)  # [T, 4, 4, 4]
        scores = decoder.iou_prediction_head(queries[:, :, 1, :])  # [1, 1, 4]
        if decoder.dynamic_multimask_via_stability:
            as_images = masks.reshape(-1, 16, count).permute(2, 0, 1)[None, None]  # [1, 1, 4, T, 16]
            single, single_score = decoder._dynamic_multimask_via_stability(as_images, scores)
            masks = torch.cat([single[0, 0].permute(1, 2, 0).reshape(-1, 4, 4, 1), masks[..., 1:]], dim=-1)
            scores = torch.cat([single_score, scores[:, :, 1:]], dim=2)
        return masks, scores[:, 0]


@dataclass(frozen=True, slots=True)
class Sam2Graphs:
    full: Sam2DecoderGraph
    prepare: Sam2PrepareGraph
    prompt: Sam2PromptGraph

    @classmethod
    def of(cls, model: Any) -> Sam2Graphs:
        full = Sam2DecoderGraph(model)
        return cls(full, Sam2PrepareGraph(full).eval(), Sam2PromptGraph(full).eval())


SAM2_INPUTS = GraphInputs(extras=("high_res_0", "high_res_1"), prepared=PREPARED)


def onnx_folder(weights_folder: Path, checkpoint_sha256: str) -> Path:
    return weights_folder / "derived" / f"sam2-decoder-{checkpoint_sha256[:16]}-v{GRAPH_VERSION}"


def export_graphs(graphs: Sam2Graphs, target: Path) -> Path:
    """Export the three graphs into ``target`` (a folder, complete or absent: never half-written)."""
    full = graphs.full
    channels, grid = full.image_pe.shape[1], full.image_pe.shape[-1]
    high_0 = torch.zeros(1, full.mask_decoder.upscale_conv2.out_channels, 4 * grid, 4 * grid)
    high_1 = torch.zeros(1, full.mask_decoder.upscale_conv1.out_channels, 2 * grid, 2 * grid)
    embedding, points, labels = torch.zeros(1, channels, grid, grid), torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]])
    dynamic = {"point_coords": {1: "points"}, "point_labels": {1: "points"}}

    def write(work: Path) -> None:
        with torch.no_grad():
            prepared = graphs.prepare(embedding, high_0, high_1)
            torch.onnx.export(full, (embedding, high_0, high_1, points, labels, torch.zeros(1, 1, 4 * grid, 4 * grid),
                                     torch.zeros(1)), str(work / "full.onnx"), input_names=list(INPUTS),
                              output_names=list(OUTPUTS), dynamic_axes=dynamic, opset_version=17, dynamo=False)
            torch.onnx.export(graphs.prepare, (embedding, high_0, high_1), str(work / "prepare.onnx"),
                              input_names=["image_embeddings", "high_res_0", "high_res_1"],
                              output_names=list(PREPARED), opset_version=17, dynamo=False)
            torch.onnx.export(graphs.prompt, (*prepared, points, labels), str(work / "prompt.onnx"),
                              input_names=list(PROMPT_INPUTS), output_names=list(OUTPUTS), dynamic_axes=dynamic,
                              opset_version=17, dynamo=False)

    export_atomically(target, "prompt.onnx", write)
    remove_older_versions(target)
    return target
