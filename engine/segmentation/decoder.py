"""Decoding prompts against a cached embedding: ONNX Runtime when it can, torch otherwise.

Both run the same graph (:class:`PromptDecoderGraph`, SAM's prompt encoder and
mask decoder from the loaded weights), so they give the same masks. The ONNX
file is exported at first use and kept in the model's folder next to its
weights, named by the checkpoint's hash, so later sessions start at once.
Shapes: embedding ``[1, C, 64, 64]``; points ``[1, N, 2]`` (frame pixels) and
labels ``[1, N]``; previous mask ``[1, 1, 256, 256]`` with a flag ``[1]`` →
low-resolution logits ``[1, 4, 256, 256]`` and predicted IoU ``[1, 4]``
(index 0 is the single-mask output, 1–3 the multimask candidates).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.segmentation.prompts import Prompt

log = logging.getLogger(__name__)
GRAPH_VERSION = 1
_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")


@dataclass(frozen=True, slots=True)
class Decoded:
    low_res: np.ndarray  # [4, 256, 256] logits
    scores: np.ndarray  # [4] predicted IoU

    def best(self, prompt: Prompt) -> int:
        """SAM's advice: for a lone click the best of the three candidates, else the single mask."""
        return int(1 + np.argmax(self.scores[1:])) if prompt.ambiguous else 0

    def candidates(self, prompt: Prompt) -> list[int]:
        """The alternatives a curator can cycle through, best first."""
        if not prompt.ambiguous:
            return [0]
        return [int(1 + i) for i in np.argsort(-self.scores[1:])]


class PromptDecoder(Protocol):
    name: str

    def decode(self, features: np.ndarray, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded: ...


def _inputs(features: np.ndarray, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    previous = prompt.previous
    return {
        "image_embeddings": features[None].astype(np.float32, copy=False),
        "point_coords": points.astype(np.float32, copy=False),
        "point_labels": labels.astype(np.float32, copy=False),
        "mask_input": (previous[None, None].astype(np.float32) if previous is not None
                       else np.zeros((1, 1, 256, 256), dtype=np.float32)),
        "has_mask_input": np.array([1.0 if previous is not None else 0.0], dtype=np.float32),
    }


def decoder_graph(sam: Any) -> Any:
    """SAM's prompt encoder + mask decoder as one traceable CPU module (no upscaling inside).

    It holds its own float32 CPU copy of those two small parts (about 4 M
    weights), so it neither moves nor shares the loaded model, and any thread may use it.
    """
    import copy

    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    class Heads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prompt_encoder = copy.deepcopy(sam.prompt_encoder).float().cpu()
            self.mask_decoder = copy.deepcopy(sam.mask_decoder).float().cpu()
            self.image_encoder = _InputSide(sam.image_encoder.img_size)
            self.mask_threshold = sam.mask_threshold

    class PromptDecoderGraph(SamOnnxModel):
        @torch.no_grad()
        def forward(self, image_embeddings: Any, point_coords: Any, point_labels: Any, mask_input: Any,
                    has_mask_input: Any) -> tuple[Any, Any]:
            masks, scores = self.model.mask_decoder.predict_masks(
                image_embeddings=image_embeddings, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=self._embed_points(point_coords, point_labels),
                dense_prompt_embeddings=self._embed_masks(mask_input, has_mask_input))
            return masks, scores

    return PromptDecoderGraph(Heads(), return_single_mask=False).eval()  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _InputSide:
    img_size: int


class TorchPromptDecoder:
    """Runs the graph with torch on the CPU."""

    name = "torch"

    def __init__(self, graph: Any) -> None:
        self.graph = graph

    def decode(self, features: np.ndarray, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded:
        import torch

        tensors = {name: torch.from_numpy(value) for name, value in _inputs(features, prompt, points, labels).items()}
        with torch.inference_mode():
            masks, scores = self.graph(*(tensors[name] for name in _INPUTS))
        return Decoded(masks[0].float().cpu().numpy(), scores[0].float().cpu().numpy())


class OnnxPromptDecoder:
    """Runs the exported graph with ONNX Runtime; safe to call from any thread."""

    name = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def decode(self, features: np.ndarray, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded:
        masks, scores = self.session.run(None, _inputs(features, prompt, points, labels))
        return Decoded(masks[0], scores[0])


_export_lock = threading.Lock()


def onnx_path(weights_folder: Path, checkpoint_sha256: str) -> Path:
    return weights_folder / "derived" / f"prompt-decoder-{checkpoint_sha256[:16]}-v{GRAPH_VERSION}.onnx"


def export_decoder(graph: Any, target: Path) -> Path:
    """Export ``graph`` to ``target`` (atomically; an existing export is reused)."""
    import torch

    with _export_lock:
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        width = graph.model.prompt_encoder.embed_dim
        grid = graph.model.prompt_encoder.image_embedding_size
        example = (torch.zeros(1, width, *grid), torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]]),
                   torch.zeros(1, 1, 256, 256), torch.zeros(1))
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.part")
        os.close(handle)
        try:
            with _quiet_tracer():
                torch.onnx.export(graph, example, temporary, input_names=list(_INPUTS),
                                  output_names=["low_res_masks", "iou_predictions"],
                                  dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"}},
                                  opset_version=17, dynamo=False)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return target


class _quiet_tracer:
    # The tracer warns about Python scalars in segment-anything's code; they are constants there.
    def __enter__(self) -> None:
        import warnings

        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)
