"""Decoding prompts against a cached embedding: ONNX Runtime when it can, torch otherwise.

Both run the same graphs (``graphs.py``, built from the loaded weights; SAM 2's
in ``sam2_decoder.py``, read through its own ``GraphInputs``), so they give the same
masks. The ONNX files are exported at first use and kept in
the model's folder next to its weights, named by the checkpoint's hash, so
later sessions start at once. Each decoder keeps the per-page preparation of
the last few pages. Output: low-resolution logits ``[4, 256, 256]`` and
predicted IoU ``[4]`` (index 0 is the single-mask output, 1–3 the multimask
candidates); the per-click path returns the logits in token order and only the
mask shown is put in image order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.models.derived import export_atomically, onnx_session, remove_older_versions
from engine.segmentation.embeddings import Embedding, EmbeddingKey
from engine.segmentation.graphs import PREPARED_OUTPUTS, DecoderGraphs, unblock_masks
from engine.segmentation.prompts import Prompt

GRAPH_VERSION = 5
PREPARED_PAGES = 4
_FULL_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
_PROMPT_INPUTS = (*PREPARED_OUTPUTS, "point_coords", "point_labels")
_OUTPUTS = ("low_res_masks", "iou_predictions")


@dataclass(frozen=True, slots=True)
class Decoded:
    masks: np.ndarray  # [4, 256, 256] logits, or [T, 4, 4, 4] in token order when ``blocked``
    scores: np.ndarray  # [4] predicted IoU
    blocked: bool = False

    def logits(self, index: int) -> np.ndarray:
        """``[256, 256]`` low-resolution logits of one candidate."""
        return unblock_masks(self.masks[..., index:index + 1])[0] if self.blocked else self.masks[index]

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

    def decode(self, embedding: Embedding, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded: ...


@dataclass(frozen=True, slots=True)
class GraphInputs:
    """What a family's exported graphs read: the page's tensors (the embedding, then the named ``extras`` it
    carries, SAM 2's high-resolution maps) and the names of what the per-page graph prepares. Dicts keep
    the graphs' argument order, so the torch graphs take their values positionally."""

    extras: tuple[str, ...] = ()
    prepared: tuple[str, ...] = PREPARED_OUTPUTS

    def page(self, embedding: Embedding) -> dict[str, np.ndarray]:
        page = {"image_embeddings": embedding.features[None].astype(np.float32, copy=False)}
        page.update((name, embedding.extras[name][None].astype(np.float32, copy=False)) for name in self.extras)
        return page

    def full(self, embedding: Embedding, prompt: Prompt, points: np.ndarray,
             labels: np.ndarray) -> dict[str, np.ndarray]:
        previous, side = prompt.previous, embedding.frame.side // 4
        return {**self.page(embedding),
                "point_coords": points.astype(np.float32, copy=False),
                "point_labels": labels.astype(np.float32, copy=False),
                "mask_input": (previous[None, None].astype(np.float32) if previous is not None
                               else np.zeros((1, 1, side, side), dtype=np.float32)),
                "has_mask_input": np.array([1.0 if previous is not None else 0.0], dtype=np.float32)}


SAM_INPUTS = GraphInputs()


class PreparedPages:
    """The per-page preparation for the last few pages (thread-safe), named ``names``."""

    def __init__(self, names: tuple[str, ...] = PREPARED_OUTPUTS) -> None:
        self.names = names
        self._held: OrderedDict[EmbeddingKey, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, embedding: Embedding, prepare: Any) -> dict[str, Any]:
        with self._lock:
            held = self._held.get(embedding.key)
            if held is not None:
                self._held.move_to_end(embedding.key)
                return held
        prepared = dict(zip(self.names, prepare(embedding), strict=True))
        with self._lock:
            self._held[embedding.key] = prepared
            while len(self._held) > PREPARED_PAGES:
                self._held.popitem(last=False)
        return prepared


class TorchPromptDecoder:
    """Runs the graphs with torch on the CPU."""

    name = "torch"

    def __init__(self, graphs: Any, inputs: GraphInputs = SAM_INPUTS) -> None:
        self.graphs = graphs
        self.inputs = inputs
        self._prepared = PreparedPages(inputs.prepared)

    def _prepare(self, embedding: Embedding) -> tuple[Any, ...]:
        import torch

        with torch.inference_mode():
            return tuple(self.graphs.prepare(*(torch.from_numpy(part) for part in
                                               self.inputs.page(embedding).values())))

    def decode(self, embedding: Embedding, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded:
        import torch

        with torch.inference_mode():
            if prompt.previous is None:
                prepared = self._prepared.get(embedding, self._prepare)
                masks, scores = self.graphs.prompt(*(prepared[name] for name in self.inputs.prepared),
                                                   torch.from_numpy(points), torch.from_numpy(labels))
                return Decoded(masks.float().numpy(), scores[0].float().numpy(), blocked=True)
            inputs = self.inputs.full(embedding, prompt, points, labels)
            masks, scores = self.graphs.full(*(torch.from_numpy(part) for part in inputs.values()))
        return Decoded(masks[0].float().numpy(), scores[0].float().numpy())


def decoder_sessions(folder: Path) -> dict[str, Any]:
    """ONNX Runtime sessions for the exported ``full``, ``prepare`` and ``prompt`` graphs in ``folder``.

    Their threads spin between a click's operations but not after it: the mask's resizing runs next, on the
    same cores. ONNX Runtime's fusion of a residual sum with the layer norm after it is left out: its fused
    operator took 5–6 ms of a 15 ms click here (SAM ViT-B and SAM 2.1's prompt graphs, 2 threads)."""
    return {name: onnx_session(folder / f"{name}.onnx", spin_after=False, disabled=("SkipLayerNormFusion",))
            for name in ("full", "prepare", "prompt")}


class OnnxPromptDecoder:
    """Runs the exported graphs with ONNX Runtime; safe to call from any thread."""

    name = "onnx"

    def __init__(self, folder: Path, inputs: GraphInputs = SAM_INPUTS) -> None:
        self.sessions = decoder_sessions(folder)
        self.inputs = inputs
        self._prepared = PreparedPages(inputs.prepared)

    def _prepare(self, embedding: Embedding) -> list[np.ndarray]:
        return self.sessions["prepare"].run(None, self.inputs.page(embedding))

    def decode(self, embedding: Embedding, prompt: Prompt, points: np.ndarray, labels: np.ndarray) -> Decoded:
        if prompt.previous is None:
            inputs = {**self._prepared.get(embedding, self._prepare), "point_coords": points.astype(np.float32),
                      "point_labels": labels.astype(np.float32)}
            masks, scores = self.sessions["prompt"].run(None, inputs)
            return Decoded(masks, scores[0], blocked=True)
        masks, scores = self.sessions["full"].run(None, self.inputs.full(embedding, prompt, points, labels))
        return Decoded(masks[0], scores[0])


def onnx_folder(weights_folder: Path, checkpoint_sha256: str) -> Path:
    return weights_folder / "derived" / f"sam-decoder-{checkpoint_sha256[:16]}-v{GRAPH_VERSION}"


def export_decoder(graphs: DecoderGraphs, target: Path) -> Path:
    """Export the three graphs into ``target`` (a folder, complete or absent: never half-written)."""
    import torch

    encoder = graphs.full.model.prompt_encoder
    width, grid = encoder.embed_dim, encoder.image_embedding_size
    embedding = torch.zeros(1, width, *grid)
    points, labels = torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]])
    dynamic = {"point_coords": {1: "points"}, "point_labels": {1: "points"}}

    def write(work: Path) -> None:
        prepared = graphs.prepare(embedding)
        torch.onnx.export(graphs.full, (embedding, points, labels, torch.zeros(1, 1, 256, 256), torch.zeros(1)),
                          str(work / "full.onnx"), input_names=list(_FULL_INPUTS), output_names=list(_OUTPUTS),
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
        torch.onnx.export(graphs.prepare, (embedding,), str(work / "prepare.onnx"),
                          input_names=["image_embeddings"], output_names=list(PREPARED_OUTPUTS),
                          opset_version=17, dynamo=False)
        torch.onnx.export(graphs.prompt, (*prepared, points, labels), str(work / "prompt.onnx"),
                          input_names=list(_PROMPT_INPUTS), output_names=list(_OUTPUTS),
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)

    export_atomically(target, "prompt.onnx", write)
    remove_older_versions(target)
    return target
