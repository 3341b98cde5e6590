"""SAM image encoding throughput (pages/s) for ViT-B/L/H, on the CPU and, when present, on CUDA.

Full-size encoders with random weights (published shapes), loaded from a model
store through the real adapter; pages are real scans decoded to SAM's input
size beforehand (decoding is not timed). On CUDA the encoder runs in half
precision under autocast, batched. One warm-up batch per model is not timed.
Prints one JSON line.

    .venv/bin/python bench/sam_encode.py [--models sam-vit-b sam-vit-l sam-vit-h] [--pages 2] [--batch 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, devices, emit  # noqa: E402

SCANS = [REPO.parent / "shared" / "data" / "manuscripts" / name
         for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg",
                      "SBB0000F29300010000_0002.tif", "kant_aufklaerung_1784_0017.tif")]


def _frames(count: int) -> list:
    from PIL import Image

    from engine.segmentation.segmenter import PageRef, frame_pixels

    frames = []
    for index in range(count):
        path = SCANS[index % len(SCANS)]
        with Image.open(path) as image:
            width, height = image.size
        frames.append(frame_pixels(PageRef(index, path, 0, f"{index:064d}", width, height)))
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sam-vit-b", "sam-vit-l", "sam-vit-h"])
    parser.add_argument("--pages", type=int, default=2, help="pages timed per model and device")
    parser.add_argument("--batch", type=int, default=4, help="batch size on a GPU (the CPU encodes one by one)")
    parser.add_argument("--device", default="auto")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.models, args.pages, args.batch, args.device = ["sam-vit-b"], 1, 1, "cpu"

    import torch

    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.segmentation.segmenter import encode_batch

    frames = _frames(max(args.pages, args.batch))
    store = bench_store(args.models, args.smoke)
    figures: dict[str, object] = {"bench": "sam_encode", "torch_threads": torch.get_num_threads()}
    for device in devices(args.device):
        service = ModelService(store, ModelManager(device=DeviceChoice(device)))
        batch = args.batch if device != "cpu" else 1
        pages = frames[:max(args.pages, batch)]
        for model_id in args.models:
            service.run_batches(model_id, pages[:batch], encode_batch, batch_size=batch)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            service.run_batches(model_id, pages, encode_batch, batch_size=batch)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            precision = "fp16/bf16 autocast" if device == "cuda" else "fp32"
            figures[f"{model_id}@{device}"] = {"pages_per_s": round(len(pages) / seconds, 3),
                                               "s_per_page": round(seconds / len(pages), 2),
                                               "batch": batch, "precision": precision}
            service.unload(model_id)
    emit(figures)


if __name__ == "__main__":
    main()
