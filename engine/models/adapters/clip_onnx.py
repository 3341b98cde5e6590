"""CLIP's image tower in ONNX Runtime with int8 weights, where it is faster and faithful on this model.

Measured with ViT-B-32, batch 16, 2 threads (model only, images/s; cosine to torch float32, random weights):

================================  ==========================  ==================================
                                  Xeon, avx512_bf16 + VNNI    EPYC, AVX2 only (no VNNI)
================================  ==========================  ==================================
torch float32                     19.5                        9.8
torch bf16 autocast               34.5                        (no instructions: not used)
ONNX Runtime float32              19.7                        12.7
int8, 8-bit weights per tensor    43.9 (cosine 0.9998)        16.3 (cosine 0.985: refused)
int8, 7-bit weights per channel   —                           18.2 (cosine 0.9997)
================================  ==========================  ==================================

Without VNNI, x86 multiplies bytes with ``vpmaddubsw``, whose 16-bit sums saturate with full 8-bit
weights; 7-bit weights cannot saturate it. Quantisation error also depends on the weights' own
outliers. So the recipes are tried in order (``RECIPES``), each checked against torch float32 on the
first batch of real pages every time the model is loaded, on this processor: the first at cosine
``FAITHFUL`` or above is used; if none is, torch stays. The exports are kept beside the weights (made
once); the check is not, so a models folder shared with another computer is checked there again.

Shapes: pixels ``[B, 3, S, S]`` (normalised) → vectors ``[B, D]`` float32, not yet unit length.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.derived import export_atomically, onnx_session, remove_older_versions

log = logging.getLogger(__name__)
VERSION = 2
FAITHFUL = 0.999
CHECK_IMAGES = 8  # at most this many pages of the first batch are encoded twice for the check
_DONE = "done.json"


@dataclass(frozen=True)
class Recipe:
    """One way of quantising the tower (``onnxruntime.quantization.quantize_dynamic`` options)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"visual.{self.name}.onnx"


RECIPES = (
    Recipe("int8"),  # fastest where the processor has VNNI
    Recipe("int8-7bit", {"per_channel": True, "reduce_range": True}),  # faithful without VNNI
)


@dataclass(frozen=True)
class CheckedTower:
    """The session in use, its recipe, and the cosine each recipe tried reached in this load's check."""

    session: Any
    recipe: str
    cosines: dict[str, float]


def tower_folder(derived: Path, checksum: str) -> Path:
    return derived / f"clip-image-int8-{checksum[:16]}-v{VERSION}"


def image_session(model: Any, derived: Path, checksum: str, check_pixels: Any) -> CheckedTower | None:
    """The first recipe's session for these weights that stays faithful on ``check_pixels`` (the towers are
    exported the first time), or ``None`` when none does or none can be made."""
    target = tower_folder(derived, checksum)
    try:
        export_atomically(target, _DONE, lambda work: _export(model, check_pixels, work, target))
        return _first_faithful(model, target, check_pixels[:CHECK_IMAGES])
    except Exception as error:  # noqa: BLE001 - an exporter or runtime fault: torch still works
        log.warning("CLIP's image tower stays on torch: %s", error)
        return None


def export_image_tower(model: Any, example: Any, plain: Path, quantised_into: Path | None = None) -> None:
    """The image tower of ``model`` (open_clip) in float32 to ``plain``, and quantised by each recipe into
    ``quantised_into`` (as ``Recipe.file_name``); ``example``: pixels ``[B, 3, S, S]`` to trace with."""
    import torch
    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels: Any) -> Any:
            return self.model.encode_image(pixels)

    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX form
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(ImageTower().eval(), (example.float()[:1],), str(plain), input_names=["pixels"],
                              output_names=["vectors"], dynamic_axes={"pixels": {0: "batch"}, "vectors": {0: "batch"}},
                              opset_version=17, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    if quantised_into is not None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        for recipe in RECIPES:
            quantize_dynamic(str(plain), str(quantised_into / recipe.file_name), weight_type=QuantType.QInt8,
                             **recipe.options)


def _export(model: Any, example: Any, work: Path, target: Path) -> None:
    plain = work / "visual.onnx"
    export_image_tower(model, example, plain, work)
    plain.unlink()
    (work / _DONE).write_text(json.dumps({"recipes": [recipe.name for recipe in RECIPES]}), encoding="utf-8")
    remove_older_versions(target)


def _first_faithful(model: Any, folder: Path, pixels: Any) -> CheckedTower | None:
    import torch

    pixels = pixels.float()
    with torch.inference_mode(False), torch.no_grad():
        expected = _unit(model.encode_image(pixels).float().numpy())
    cosines: dict[str, float] = {}
    for recipe in RECIPES:
        path = folder / recipe.file_name
        if not path.is_file():
            continue
        session = _session(path)
        got = _unit(session.run(None, {"pixels": pixels.numpy()})[0])
        cosines[recipe.name] = cosine = float(np.min((got * expected).sum(axis=1)))
        if cosine >= FAITHFUL:
            return CheckedTower(session, recipe.name, cosines)
        log.info("int8 CLIP image tower (%s) not used here: cosine %.5f to float32", recipe.name, cosine)
    return None


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _session(path: Path) -> Any:
    import torch

    # Torch's thread count: the cap beside a window holds. Idle threads sleep instead of spinning: the page
    # decoders work on the same cores meanwhile.
    return onnx_session(path, threads=torch.get_num_threads(), spinning=False)
