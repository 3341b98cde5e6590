"""SAM 2.1 (Hiera tiny / small …) for still pages, through ``transformers``' ``Sam2Model``.

Why ``transformers`` and not Meta's ``sam2`` package: the weights come as
safetensors with a ``config.json`` (no pickles, no Hydra configuration files),
the package is already a dependency (Grounding DINO, DINO), and it needs no
compiled extension. The architecture (tiny, small, base+, large) is read from
the ``config.json`` beside the weights.

Shapes, for the input side S = 1024 (the page stretched to the square, as SAM 2
was trained; see ``InputFrame.stretch``):

* image encoder: pixels ``[B, 3, S, S]`` (ImageNet-normalised) → embedding ``[B, 256, S/16, S/16]`` and the
  decoder's high-resolution features ``[B, 32, S/4, S/4]`` and ``[B, 64, S/8, S/8]``;
* prompt encoder + mask decoder (``engine.segmentation.sam2_decoder``): points ``[1, N, 2]`` in input
  pixels, labels ``[1, N]`` → logits ``[1, 4, S/4, S/4]`` and predicted IoU ``[1, 4]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.models.adapters import ModelFiles
from engine.models.adapters.hf import from_folder
from engine.models.adapters.weights import size_in_bytes
from engine.models.precision import autocast
from engine.models.runtime import half_precision_for

PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
# bf16 on a CPU with the instructions: Hiera-tiny encodes a page in 1.6 s instead of 2.6–3.2 s here
# (2 threads), with masks at IoU ≥ 0.98 to float32 (tests/test_precision.py).
HALF_ON_CPU = True


@dataclass
class Sam2Network:
    """A loaded SAM 2: ``model`` is a ``transformers`` ``Sam2Model`` in eval mode on ``device``."""

    model: Any
    device: str
    encoder_dtype: Any
    checkpoint_sha256: str
    size_bytes: int
    image_size: int

    def to(self, device: str) -> Sam2Network:
        self.model.to(device)
        self.device = device
        self.encoder_dtype = half_precision_for(device, half_on_cpu=HALF_ON_CPU)
        return self

    def pixels(self, images: list[np.ndarray]) -> Any:
        """Frame images ``[S, S, 3]`` uint8 → normalised ``[B, 3, S, S]`` float32 on the device."""
        import torch

        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(PIXEL_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(PIXEL_STD, device=self.device).view(1, 3, 1, 1)
        return (batch - mean) / std

    def encode(self, pixels: Any) -> tuple[Any, Any, Any]:
        """``[B, 3, S, S]`` → embedding ``[B, 256, S/16, S/16]``, high-res ``[B, 32, S/4, S/4]``,
        ``[B, 64, S/8, S/8]`` (float32)."""
        import torch

        with torch.inference_mode(), autocast(self.device, self.encoder_dtype):
            high_0, high_1, embedding = self.model.get_image_embeddings(pixels)
        return embedding.float(), high_0.float(), high_1.float()


def load(files: ModelFiles, device: str) -> Sam2Network:
    import torch
    from transformers import Sam2Model

    model = from_folder(Sam2Model, files, dtype=torch.float32).eval()
    weights = next(file.filename for file in files.spec.files if not file.optional and
                   file.filename.endswith(".safetensors"))
    network = Sam2Network(model, "cpu", torch.float32, files.checksum(weights), size_in_bytes(model),
                          int(model.config.prompt_encoder_config.image_size))
    return network.to(device)


def probe(network: Sam2Network) -> str:
    """One click decoded on a blank image (``models check``)."""
    from engine.segmentation.sam2_decoder import Sam2DecoderGraph

    side = network.image_size
    embedding, high_0, high_1 = network.encode(network.pixels([np.zeros((side, side, 3), dtype=np.uint8)]))
    graph = Sam2DecoderGraph(network.model)
    import torch

    with torch.inference_mode():
        masks, scores = graph(embedding.cpu(), high_0.cpu(), high_1.cpu(),
                              torch.tensor([[[side / 2, side / 2], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
                              torch.zeros(1, 1, side // 4, side // 4), torch.zeros(1))
    return (f"image features {list(embedding.shape)}, {masks.shape[1]} candidate masks of "
            f"{masks.shape[-2]}×{masks.shape[-1]}, scores {[round(float(s), 3) for s in scores[0]]}")
