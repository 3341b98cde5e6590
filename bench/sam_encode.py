"""SAM image encoding time per page for each model and precision, on the CPU and, when present, on CUDA.

Full-size encoders with random weights (published shapes), loaded from a model
store through the real adapter and encoded through the segmenter's own family
code; pages are real scans decoded to the model's input frame beforehand
(decoding is not timed). On the CPU each model runs in float32 and, where the
processor has bfloat16 instructions and the family declares it, in bf16
(``MARGINALIA_CPU_BF16`` decides, as in the product); a SAM 2 encoder in float32 on
a CPU runs in ONNX Runtime (the product's path there) and, for comparison, in
torch; on CUDA in half precision,
batched. ``cpu_default`` names the model the SAM tool suggests on a CPU and its
time on the SBB scan (2577×3633) at the precision the product picks here.
One warm-up batch per model is not timed. Prints one JSON line.

    .venv/bin/python bench/sam_encode.py [--models sam2.1-hiera-tiny sam-vit-b …] [--pages 2] [--batch 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, devices, emit  # noqa: E402

SBB_SCAN = REPO.parent / "shared" / "data" / "manuscripts" / "SBB0000F29300010000_0002.tif"


def _frames(count: int, stretch: bool) -> list:
    """The SBB scan (2577×3633) as the model's frame, ``count`` times."""
    from PIL import Image

    from engine.segmentation.segmenter import PageRef, frame_pixels

    path = SBB_SCAN
    with Image.open(path) as image:
        width, height = image.size
    frame = frame_pixels(PageRef(0, path, 0, "0" * 64, width, height), stretch=stretch)
    return [frame.copy() for _ in range(count)]


def _onnx_encoder(network: object) -> bool:
    """Whether this network encodes through its exported encoder (SAM 2 on a CPU in float32)."""
    finder = getattr(network, "onnx_encoder", None)
    return finder is not None and finder() is not None


def _without_onnx(network: object) -> None:
    network._onnx_encoder = False  # the torch path, for comparison  # noqa: SLF001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam-vit-b", "sam-vit-l", "sam-vit-h"])
    parser.add_argument("--pages", type=int, default=2, help="pages timed per model and device")
    parser.add_argument("--batch", type=int, default=4, help="batch size on a GPU (the CPU encodes one by one)")
    parser.add_argument("--device", default="auto")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.models, args.pages, args.batch, args.device = ["sam2.1-hiera-tiny", "sam-vit-b"], 1, 1, "cpu"

    import os

    import torch

    from engine.models.catalogue import suggested_segmentation_model
    from engine.models.precision import cpu_has_bf16
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.segmentation.families import family_of

    store = bench_store(args.models, args.smoke)
    native_bf16 = cpu_has_bf16()
    figures: dict[str, object] = {"bench": "sam_encode", "torch_threads": torch.get_num_threads(),
                                  "cpu_bf16": native_bf16, "page": "SBB0000F29300010000_0002.tif 2577x3633"}
    for device in devices(args.device):
        batch = args.batch if device != "cpu" else 1
        precisions = ["fp32", "bf16"] if device == "cpu" and native_bf16 else ["auto"]
        for model_id in args.models:
            family = family_of(model_id)
            pages = _frames(max(args.pages, batch), family.stretch)
            for wanted in precisions:
                if wanted != "auto":
                    os.environ["MARGINALIA_CPU_BF16"] = "1" if wanted == "bf16" else "0"
                service = ModelService(store, ModelManager(device=DeviceChoice(device)))
                used = service.precision_of(model_id)
                if wanted == "bf16" and used != "bf16":
                    continue  # the family keeps float32 on a CPU
                encode = lambda network, batch_images: family.encode(network, batch_images, None)  # noqa: E731
                runtimes = ["onnxruntime", "torch"] if service.run(model_id, _onnx_encoder) else ["torch"]
                for runtime in runtimes:
                    if runtime == "torch":
                        service.run(model_id, _without_onnx)
                    service.run_batches(model_id, pages[:batch], encode, batch_size=batch)  # warm-up
                    if device == "cuda":
                        torch.cuda.synchronize()
                    started = time.perf_counter()
                    service.run_batches(model_id, pages, encode, batch_size=batch)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - started
                    name = f"{model_id}@{device}:{used}" + (f":{runtime}" if len(runtimes) > 1 else "")
                    figures[name] = {"s_per_page": round(seconds / len(pages), 2),
                                     "pages_per_s": round(len(pages) / seconds, 3), "batch": batch}
                service.unload(model_id)
        os.environ.pop("MARGINALIA_CPU_BF16", None)
    default = suggested_segmentation_model(False)
    chosen = f"{default}@cpu:{'bf16' if native_bf16 else 'fp32:onnxruntime'}"
    if chosen in figures:
        figures["cpu_default"] = {"model": default, "precision": chosen.split(":", 1)[1],
                                  "s_per_page": figures[chosen]["s_per_page"]}  # type: ignore[index]
    emit(figures)


if __name__ == "__main__":
    main()
