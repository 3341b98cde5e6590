"""What every model benchmark shares: full-size models with random weights, devices, peak memory, output.

A benchmark builds the published architecture with random weights in the
publisher's file format (``tests/modelkit``), installs it in a throw-away model
store through the real import path, and loads it through the real adapters, so
its compute and memory equal the real model's. It runs on the CPU and on CUDA
when present, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from engine.models.store import ModelStore

# The model libraries are imported where a store is built, not here: a decoding worker process (started with
# "spawn") imports the bench script again, and would spend seconds importing torch for nothing.
CACHE = Path(tempfile.gettempdir()) / "marginalia-bench-models"
HELD_TO_AVX2_MARK = "HELD_TO_AVX2"  # the file marking a copy of onnxruntime made by bench/avx2_runtime.py


def devices(requested: str = "auto") -> list[str]:
    """The CPU, and CUDA when this machine has it (``requested`` narrows it to one)."""
    import torch

    found = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return found if requested == "auto" else [d for d in found if d == requested]


def full_size_store(model_ids: list[str], root: Path = CACHE) -> ModelStore:
    """A model store holding full-size random-weight models (built once, kept between runs)."""
    from engine.models.catalogue import get_spec
    from engine.models.store import ModelStore
    from tests.modelkit.tiny import tiny_spec, write_full_size

    store = ModelStore(root / "store")
    for model_id in model_ids:
        for needed in (*get_spec(model_id).requires, model_id):
            if store.get(needed) is None:
                folder = write_full_size(needed, root / "files" / needed)
                store.import_files(tiny_spec(needed), [folder], link=True)
    return store


def add_smoke_flag(parser: argparse.ArgumentParser) -> None:
    """``--smoke``: the smallest input and tiny models, in seconds; ``make test`` runs every bench so."""
    parser.add_argument("--smoke", action="store_true",
                        help="run on the smallest input (tiny models) to check that the bench still works")


def bench_store(model_ids: list[str], smoke: bool) -> ModelStore:
    """Full-size random-weight models, or with ``smoke`` tiny ones (same formats, same loading code)."""
    if not smoke:
        return full_size_store(model_ids)
    from engine.models.catalogue import get_spec
    from engine.models.store import ModelStore
    from tests.modelkit.tiny import tiny_spec, write_tiny

    root = Path(tempfile.mkdtemp(prefix="marginalia-bench-smoke-"))
    store = ModelStore(root / "store")
    for model_id in model_ids:
        for needed in (*get_spec(model_id).requires, model_id):
            if store.get(needed) is None:
                store.import_files(tiny_spec(needed), [write_tiny(needed, root / "files" / needed)])
    return store


def resident_bytes() -> int:
    """Resident memory now (Linux; 0 elsewhere)."""
    return _proc_status("VmRSS")


def reset_peak_resident() -> None:
    """Start a new peak: Linux resets VmHWM when 5 is written to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_resident_bytes() -> int:
    """Peak resident memory since the last reset (Linux), else the process's peak."""
    return _proc_status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _proc_status(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def onnxruntime_package() -> Path | None:
    """The folder of the ``onnxruntime`` package this process imports (``None``: not installed)."""
    spec = importlib.util.find_spec("onnxruntime")
    return Path(spec.origin).parent if spec is not None and spec.origin is not None else None


def held_to_avx2(package: Path | None) -> bool:
    """Whether ``package`` is a copy of onnxruntime held to its AVX2 kernels (``bench/avx2_runtime.py``)."""
    return package is not None and (package / HELD_TO_AVX2_MARK).is_file()


def cpu_flags() -> str:
    """The processor's flags that decide the fast paths (every figure is stated with them)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")
    said = " ".join(flag for flag in wanted if f" {flag}" in flags)
    # A lesser processor played on this one (its kernels and precision forced) is said with the figures.
    overrides = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MARGINALIA_CPU_BF16",
                 "NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE")
    forced = [f"{name}={os.environ[name]}" for name in overrides if os.environ.get(name)]
    if held_to_avx2(onnxruntime_package()):
        forced.append("onnxruntime held to AVX2 (bench/avx2_runtime.py)")
    return f"{said} (run as: {', '.join(forced)})" if forced else said


def emit(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, sort_keys=False), flush=True)
