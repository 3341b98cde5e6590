"""DINO (ViT, ``facebook/dino-*``) and DINOv2 with registers, through ``transformers``.

Shapes, for pixels ``[B, 3, H, W]`` with H and W multiples of the patch size p
(other sizes are cropped by the patch embedding), h = H/p, w = W/p, R register tokens
(0 for DINO, 4 for DINOv2 with registers):

* ``tokens``: ``[B, 1 + R + h·w, C]`` (class token, registers, patches);
* ``attention_maps``: ``[B, heads, h, w]``, the last layer's attention from the class token
  to each patch, the "what stands out" maps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.errors import MarginaliaError
from engine.models.adapters import ModelFiles
from engine.models.adapters.hf import from_folder
from engine.models.adapters.weights import size_in_bytes
from engine.models.precision import autocast
from engine.models.runtime import weight_and_compute_dtypes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Not on CPUs: measured with ViT-S/8 at 112×80 patches on 2 threads, bf16 autocast took 12.3 s against
# 12.9 s in float32 (attention over ~9,000 tokens dominates and gains nothing), so float32 stays.
HALF_ON_CPU = False


@dataclass
class DinoNetwork:
    model: Any  # a transformers ViTModel or Dinov2WithRegistersModel, eager attention, eval mode
    device: str
    dtype: Any  # the weights' (half on GPUs)
    patch_size: int
    register_tokens: int
    heads: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size_bytes: int
    compute_dtype: Any = None  # autocast precision (bf16 on CPUs that have it)

    def to(self, device: str) -> DinoNetwork:
        self.dtype, self.compute_dtype = weight_and_compute_dtypes(device, half_on_cpu=HALF_ON_CPU)
        self.model.to(device=device, dtype=self.dtype)
        self.device = device
        self.size_bytes = size_in_bytes(self.model)
        return self

    def _forward(self, pixels: Any) -> Any:
        with autocast(self.device, self.compute_dtype):
            return self.model(pixel_values=pixels.to(self.device, self.dtype), interpolate_pos_encoding=True)

    def tokens(self, pixels: Any) -> Any:
        """``[B, 3, H, W]`` → ``[B, 1 + R + h·w, C]`` (float32)."""
        import torch

        with torch.inference_mode():
            return self._forward(pixels).last_hidden_state.float()

    def attention_maps(self, pixels: Any) -> Any:
        """``[B, 3, H, W]`` → ``[B, heads, h, w]``: the last layer's class-token attention over the patches."""
        return self.attention_and_tokens(pixels)[0]

    def attention_and_tokens(self, pixels: Any) -> tuple[Any, Any]:
        """``[B, 3, H, W]`` → the last layer's class-token attention over the patches ``[B, heads, h, w]`` and
        the tokens ``[B, 1 + R + h·w, C]``, from one pass of the model.

        Only the class token's row is computed, from the last layer's queries and keys (caught on their
        way through): the full ``[heads, T, T]`` matrices of every layer, which ``output_attentions`` keeps,
        take gigabytes at 112 patches a side (T ≈ 9,000 tokens), and the fast attention kernels stay usable.
        """
        import torch

        height, width = pixels.shape[-2] // self.patch_size, pixels.shape[-1] // self.patch_size
        query_projection, key_projection = last_query_and_key(self.model)
        caught: dict[str, Any] = {}
        hooks = [query_projection.register_forward_hook(lambda _m, _i, out: caught.__setitem__("q", out)),
                 key_projection.register_forward_hook(lambda _m, _i, out: caught.__setitem__("k", out))]
        try:
            with torch.inference_mode(), autocast(self.device, self.compute_dtype):
                output = self.model(pixel_values=pixels.to(self.device, self.dtype), interpolate_pos_encoding=True)
        finally:
            for hook in hooks:
                hook.remove()
        batch, tokens = caught["k"].shape[:2]
        keys = caught["k"].float().view(batch, tokens, self.heads, -1).transpose(1, 2)  # [B, heads, T, d]
        query = caught["q"][:, 0].float().view(batch, self.heads, 1, -1)  # the class token, [B, heads, 1, d]
        scaling = keys.shape[-1] ** -0.5  # the models' own: one over the root of a head's width
        weights = torch.softmax((query @ keys.transpose(-1, -2)) * scaling, dim=-1)[:, :, 0]  # [B, heads, T]
        maps = weights[:, :, 1 + self.register_tokens:].reshape(batch, self.heads, height, width)
        return maps, output.last_hidden_state.float()


# The attention layers' query and key projections, by their names in transformers: renamed from query/key to
# q_proj/k_proj during 5.x (5.17 has the old names, 5.24 the new); the range this app allows holds both.
PROJECTION_NAMES = (("q_proj", "k_proj"), ("query", "key"))


def last_query_and_key(model: Any) -> tuple[Any, Any]:
    """The last attention layer's query and key projections (``nn.Linear`` C → C)."""
    from torch import nn

    for module in reversed(list(model.modules())):
        for query_name, key_name in PROJECTION_NAMES:
            query, key = getattr(module, query_name, None), getattr(module, key_name, None)
            if isinstance(query, nn.Linear) and isinstance(key, nn.Linear):
                return query, key
    raise MarginaliaError(f"This DINO model ({type(model).__name__}) has no attention layer where Marginalia "
                          "reads its attention maps: this version of the transformers library names them "
                          "otherwise. Install a transformers version this Marginalia supports.")


def _normalisation(files: ModelFiles) -> tuple[tuple[float, ...], tuple[float, ...]]:
    config_file = "preprocessor_config.json"
    if not files.has(config_file):
        return IMAGENET_MEAN, IMAGENET_STD
    config = json.loads(files.path(config_file).read_text(encoding="utf-8"))
    return (tuple(config.get("image_mean", IMAGENET_MEAN)), tuple(config.get("image_std", IMAGENET_STD)))


def load(files: ModelFiles, device: str) -> DinoNetwork:
    from transformers import AutoModel

    # The fused attention kernels: attention_maps computes the one row it needs itself.
    model = from_folder(AutoModel, files).eval()
    config = model.config
    mean, std = _normalisation(files)
    network = DinoNetwork(model, "cpu", None, config.patch_size, getattr(config, "num_register_tokens", 0),
                          config.num_attention_heads, mean, std, size_in_bytes(model))  # type: ignore[arg-type]
    return network.to(device)
