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

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.jobs import CancelToken, cancel_between
from engine.models.adapters import ModelFiles
from engine.models.adapters.hf import from_folder
from engine.models.adapters.weights import size_in_bytes
from engine.models.derived import onnx_session
from engine.models.precision import autocast
from engine.models.runtime import half_precision_for

log = logging.getLogger(__name__)
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
# bf16 on a CPU with the instructions: Hiera-tiny encodes a page in 1.7 s instead of 2.6 s here
# (2 threads), with masks at IoU ≥ 0.98 to float32 (tests/test_precision.py).
HALF_ON_CPU = True
# Where a CPU computes in float32 (no bf16 instructions, or the curator's setting), the encoder runs in
# ONNX Runtime, exported once from the installed weights: 1.95 s instead of 2.6 s per page here with the
# same outputs (cosine 1.0); int8 quantisation (1.3 s) drifts (cosine 0.998) and is not used.
ENCODER_VERSION = 1


@dataclass
class Sam2Network:
    """A loaded SAM 2: ``model`` is a ``transformers`` ``Sam2Model`` in eval mode on ``device``."""

    model: Any
    device: str
    encoder_dtype: Any
    checkpoint_sha256: str
    size_bytes: int
    image_size: int
    derived_folder: Path | None = None  # where exports of these weights are kept
    _onnx_encoder: Any = None  # an ONNX Runtime session, once exported (float32 on a CPU only)

    def to(self, device: str) -> Sam2Network:
        self.model.to(device)
        self.device = device
        self.encoder_dtype = half_precision_for(device, half_on_cpu=HALF_ON_CPU)
        self._onnx_encoder = None
        return self

    def pixels(self, images: list[np.ndarray]) -> Any:
        """Frame images ``[S, S, 3]`` uint8 → normalised ``[B, 3, S, S]`` float32 on the device."""
        import torch

        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(PIXEL_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(PIXEL_STD, device=self.device).view(1, 3, 1, 1)
        return (batch - mean) / std

    def encode(self, pixels: Any, cancel: CancelToken | None = None) -> tuple[Any, Any, Any]:
        """``[B, 3, S, S]`` → embedding ``[B, 256, S/16, S/16]``, high-res ``[B, 32, S/4, S/4]``,
        ``[B, 64, S/8, S/8]`` (float32). ``cancel`` is honoured within a block of the encoder (torch) or
        a tenth of a second (ONNX Runtime)."""
        import torch

        session = self.onnx_encoder()
        if session is not None:
            outputs = run_cancellable(session, {"pixels": pixels.cpu().numpy()}, cancel)
            high_0, high_1, embedding = (torch.from_numpy(output) for output in outputs)
            return embedding, high_0, high_1
        with (cancel_between(self.model.vision_encoder.backbone.blocks, cancel), torch.inference_mode(),
              autocast(self.device, self.encoder_dtype)):
            high_0, high_1, embedding = self.model.get_image_embeddings(pixels)
        return embedding.float(), high_0.float(), high_1.float()

    def onnx_encoder(self) -> Any:
        """The exported float32 encoder where it is the faster faithful path (a CPU computing in float32);
        ``None`` elsewhere or when it cannot be exported (torch then)."""
        import torch

        if self.device != "cpu" or self.encoder_dtype != torch.float32 or self.derived_folder is None:
            return None
        if self._onnx_encoder is None:
            try:
                self._onnx_encoder = _encoder_session(self)
            except Exception as error:  # noqa: BLE001 - an exporter or runtime fault: torch still works
                log.warning("SAM 2 encoder stays on torch: %s", error)
                self._onnx_encoder = False
        return self._onnx_encoder or None


def _encoder_session(network: Sam2Network) -> Any:
    import torch

    from engine.models.derived import export_atomically

    target = network.derived_folder / f"sam2-encoder-{network.checkpoint_sha256[:16]}-v{ENCODER_VERSION}"
    side = network.image_size
    model = network.model

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels: Any) -> tuple[Any, Any, Any]:
            return tuple(self.model.get_image_embeddings(pixels))

    def write(work: Path) -> None:
        example = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.onnx.export(Encoder().eval(), (example,), str(work / "encoder.onnx"), input_names=["pixels"],
                              output_names=["high_res_0", "high_res_1", "embedding"], opset_version=17,
                              dynamo=False)
            expected = model.get_image_embeddings(example)
        got = _session(work / "encoder.onnx").run(None, {"pixels": example.numpy()})
        for ours, theirs in zip(got, expected, strict=True):
            theirs = theirs.numpy().ravel()
            cosine = float(ours.ravel() @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs) + 1e-12))
            if cosine < 0.9999:
                raise RuntimeError(f"the exported encoder drifts from torch (cosine {cosine:.5f})")

    export_atomically(target, "encoder.onnx", write)
    return _session(target / "encoder.onnx")


def _session(path: Path) -> Any:
    import torch

    return onnx_session(path, threads=torch.get_num_threads())  # the thread cap beside a window holds


def run_cancellable(session: Any, inputs: dict[str, np.ndarray], cancel: CancelToken | None) -> list[np.ndarray]:
    """``session.run`` that a cancel stops within a tenth of a second (ONNX Runtime's terminate flag)."""
    import onnxruntime

    if cancel is None:
        return session.run(None, inputs)
    options = onnxruntime.RunOptions()
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait_cancelled(0.1):
                options.terminate = True
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return session.run(None, inputs, options)
    except Exception:
        cancel.raise_if_cancelled()  # stopped by the watcher: a cancel, not a fault
        raise
    finally:
        finished.set()
        cancel.raise_if_cancelled()


def load(files: ModelFiles, device: str) -> Sam2Network:
    import torch
    from transformers import Sam2Model

    model = from_folder(Sam2Model, files, dtype=torch.float32).eval()
    network = Sam2Network(model, "cpu", torch.float32, files.checksum(files.spec.weights_file), size_in_bytes(model),
                          int(model.config.prompt_encoder_config.image_size), files.installed.folder / "derived")
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
