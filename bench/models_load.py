"""Load time and peak memory of each model, from the model store through the real adapters.

Each model loads in a fresh process (so that memory and caches do not carry
over) on each device: ``first_load_s`` is the wall time from asking the runtime
for the model to the network ready on the device, the first time in a process
(importing the family's libraries included, as a curator's first use in a
session); ``load_s`` the same after unloading; ``peak_rss_mb`` the peak
resident memory of that second load above what the process held before it;
on CUDA also ``cuda_peak_mb``. On the CPU, checkpoints are memory-mapped:
weights that are read lazily count when first used, so ``peak_rss_mb`` can
be below ``weights_mb``. Files are read from the page cache (built just
before), as on a machine that has loaded the model recently. Prints one JSON line.

    .venv/bin/python bench/models_load.py [--models sam-vit-b clip-vit-b-32 ...] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (CACHE, add_smoke_flag, bench_store, devices, emit, full_size_store,  # noqa: E402
                     peak_resident_bytes, reset_peak_resident, resident_bytes)

DEFAULT_MODELS = ["sam-vit-b", "grounding-dino-tiny", "dino-vits16", "dinov2-reg-small", "clip-vit-b-32",
                  "clip-xlmr-b-32"]


def _load_once(model_id: str, device: str, smoke: bool = False) -> dict[str, float]:
    import torch

    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService

    service = ModelService(bench_store([model_id], smoke), ModelManager(device=DeviceChoice(device)))
    torch.zeros(1, device=device)  # the CUDA context is not the model's cost
    figures: dict[str, float] = {}
    for attempt in ("first_load_s", "load_s"):  # the first pays for importing the family's libraries
        service.unload(model_id)
        before = resident_bytes()
        reset_peak_resident()
        started = time.perf_counter()
        network = service.manager.get(model_id, service.loader(model_id)).value
        if device == "cuda":
            torch.cuda.synchronize()
        figures[attempt] = round(time.perf_counter() - started, 3)
    figures["peak_rss_mb"] = round((peak_resident_bytes() - before) / 2**20, 1)
    figures["weights_mb"] = round(network.size_bytes / 2**20, 1)
    if device == "cuda":
        figures["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "DEVICE"), help=argparse.SUPPRESS)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_load_once(*args.child, smoke=args.smoke)))
        return
    if args.smoke:
        args.models, args.device = ["dino-vits16"], "cpu"
    else:
        full_size_store(args.models)  # build the files first, outside the timings
    figures: dict[str, object] = {"bench": "models_load", "store": str(CACHE)}
    for device in devices(args.device):
        for model_id in args.models:
            child = subprocess.run([sys.executable, __file__, "--child", model_id, device, *(["--smoke"] if args.smoke else [])], capture_output=True,
                                   text=True, check=True)
            figures[f"{model_id}@{device}"] = json.loads(child.stdout.strip().splitlines()[-1])
    emit(figures)


if __name__ == "__main__":
    main()
