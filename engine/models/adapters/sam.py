"""Segment Anything (``segment-anything`` package) from the publisher's ``.pth`` state dict.

The architecture (ViT-B/L/H or a smaller test build) is read off the weights'
shapes, so one loader serves every size. Shapes, for an input side S = 1024
and patch 16:

* image encoder: ``[B, 3, S, S]`` (normalised, padded) → embedding ``[B, C, S/16, S/16]``
  (C = 256 for the published models);
* prompt encoder + mask decoder: points ``[B, N, 2]`` in input pixels, labels ``[B, N]``,
  boxes ``[B, 4]``, previous low-res mask ``[B, 1, S/4, S/4]`` → masks ``[B, M, S/4, S/4]``
  (M = 3 candidates, or 1) and predicted IoU ``[B, M]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.models.adapters import ModelFiles
from engine.models.adapters.weights import build_without_init, fill_from, read_state_dict, size_in_bytes
from engine.models.runtime import half_precision_for

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
DECODER_HEADS = 8  # fixed by SAM's design; attention heads leave no trace in the weights' shapes
# bf16 on a CPU with the instructions: ViT-B encodes in 6.0 s instead of 11.4 s here, embeddings at cosine
# 0.99995 and masks at IoU ≥ 0.98 to float32 (tests/test_precision.py).
HALF_ON_CPU = True


@dataclass(frozen=True, slots=True)
class SamArchitecture:
    image_size: int
    patch_size: int
    encoder_width: int
    encoder_depth: int
    encoder_heads: int
    encoder_mlp_ratio: float
    window_size: int
    global_attention: tuple[int, ...]
    prompt_width: int
    mask_in_channels: int
    decoder_depth: int
    decoder_mlp_width: int
    multimask_outputs: int
    iou_head_depth: int
    iou_head_width: int

    @classmethod
    def from_weights(cls, weights: dict[str, Any]) -> SamArchitecture:
        def count(prefix: str) -> int:
            pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
            return 1 + max(int(m.group(1)) for key in weights if (m := pattern.match(key)))

        encoder_width = weights["image_encoder.patch_embed.proj.weight"].shape[0]
        patch = weights["image_encoder.patch_embed.proj.weight"].shape[-1]
        grid = weights["image_encoder.pos_embed"].shape[1]
        depth = count("image_encoder.blocks.")
        spans = [weights[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
        local = [span for span in spans if span != 2 * grid - 1]
        head_dim = weights["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        prompt_width = weights["mask_decoder.iou_token.weight"].shape[1]
        return cls(
            image_size=grid * patch, patch_size=patch, encoder_width=encoder_width, encoder_depth=depth,
            encoder_heads=encoder_width // head_dim,
            encoder_mlp_ratio=weights["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / encoder_width,
            window_size=(local[0] + 1) // 2 if local else 0,
            global_attention=tuple(i for i, span in enumerate(spans) if span == 2 * grid - 1),
            prompt_width=prompt_width,
            mask_in_channels=4 * weights["prompt_encoder.mask_downscaling.0.weight"].shape[0],
            decoder_depth=count("mask_decoder.transformer.layers."),
            decoder_mlp_width=weights["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
            multimask_outputs=weights["mask_decoder.mask_tokens.weight"].shape[0] - 1,
            iou_head_depth=count("mask_decoder.iou_prediction_head.layers."),
            iou_head_width=weights["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
        )

    def build(self) -> Any:
        """A ``segment_anything.modeling.Sam`` of this shape (weights uninitialised)."""
        import torch
        from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

        grid = self.image_size // self.patch_size
        return Sam(
            image_encoder=ImageEncoderViT(
                img_size=self.image_size, patch_size=self.patch_size, embed_dim=self.encoder_width,
                depth=self.encoder_depth, num_heads=self.encoder_heads, mlp_ratio=self.encoder_mlp_ratio,
                out_chans=self.prompt_width, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=True, window_size=self.window_size, global_attn_indexes=self.global_attention),
            prompt_encoder=PromptEncoder(
                embed_dim=self.prompt_width, image_embedding_size=(grid, grid),
                input_image_size=(self.image_size, self.image_size), mask_in_chans=self.mask_in_channels),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=self.multimask_outputs,
                transformer=TwoWayTransformer(depth=self.decoder_depth, embedding_dim=self.prompt_width,
                                              mlp_dim=self.decoder_mlp_width, num_heads=DECODER_HEADS),
                transformer_dim=self.prompt_width, iou_head_depth=self.iou_head_depth,
                iou_head_hidden_dim=self.iou_head_width),
            pixel_mean=list(PIXEL_MEAN), pixel_std=list(PIXEL_STD))


@dataclass
class SamNetwork:
    """A loaded SAM: ``sam`` is a ``segment_anything`` ``Sam`` in eval mode on ``device``.

    ``encoder_dtype`` is the precision to encode images in, under autocast (half on
    GPUs, bf16 on CPUs that have it, see ``engine.models.precision``); prompts are
    always decoded in float32. ``checkpoint_sha256``
    identifies the weights, e.g. for caching embeddings.
    """

    sam: Any
    architecture: SamArchitecture
    device: str
    encoder_dtype: Any
    checkpoint_sha256: str
    size_bytes: int

    def to(self, device: str) -> SamNetwork:
        self.sam.to(device)
        self.device = device
        self.encoder_dtype = half_precision_for(device, half_on_cpu=HALF_ON_CPU)
        return self


def load(files: ModelFiles, device: str) -> SamNetwork:
    import torch

    filename = files.spec.weights_file
    weights = read_state_dict(files.path(filename))
    try:
        architecture = SamArchitecture.from_weights(weights)
    except (KeyError, ValueError, IndexError) as error:
        from engine.models.adapters.weights import NotAWeightsFile

        raise NotAWeightsFile(f"{filename} is not a Segment Anything checkpoint (no {error}).") from error
    sam = build_without_init(architecture.build)
    fill_from(sam, weights, "Segment Anything")
    # Not part of the checkpoint, so still on the meta device after loading.
    sam.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), persistent=False)
    sam.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), persistent=False)
    sam.eval().to(device)
    return SamNetwork(sam, architecture, device, half_precision_for(device, half_on_cpu=HALF_ON_CPU), files.checksum(filename),
                      size_in_bytes(sam))


def probe(network: SamNetwork) -> str:
    """One click decoded on a blank image, through the encoder and the prompt decoder (``models check``)."""
    import torch

    side = network.architecture.image_size
    with torch.inference_mode():
        pixels = torch.zeros(1, 3, side, side, device=network.device)
        features = network.sam.image_encoder(pixels)  # [1, C, side/16, side/16]
        points = (torch.tensor([[[side / 2, side / 2]]], device=network.device),
                  torch.ones(1, 1, dtype=torch.int, device=network.device))
        sparse, dense = network.sam.prompt_encoder(points=points, boxes=None, masks=None)
        masks, scores = network.sam.mask_decoder(image_embeddings=features,
                                                 image_pe=network.sam.prompt_encoder.get_dense_pe(),
                                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                                 multimask_output=True)
    return (f"image features {list(features.shape)}, {masks.shape[1]} candidate masks of "
            f"{masks.shape[-2]}×{masks.shape[-1]}, scores {[round(float(s), 3) for s in scores[0]]}")
