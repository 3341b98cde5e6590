"""Indexing throughput: end-to-end pages/s next to the model alone on pre-decoded tensors.

Real-size CLIP ViT-B-32 (random weights, published shapes) from a model store;
the shared scans repeated to at least 200 pages are imported into a scratch
project (not timed), then indexed with the product's indexer (decoding and
resizing in the decoder processes, ahead of the model). The model-only figure
encodes the same number of already prepared tensors with the same batch size,
in the same run. Prints one JSON line with ``e2e_img_s``, ``model_only_img_s``,
``ratio``, ``device`` and ``runtime`` (the product's own choice: the first int8 image
tower recipe its check finds faithful on this processor, see ``engine/models/adapters/clip_onnx.py``),
and ``runtimes``: the image tower's model-only images/s and its cosine to torch float32 for torch
float32, torch bf16 autocast (where the processor has it), and ONNX Runtime in
float32 and with each int8 dynamic quantisation recipe (exported from the same weights).

    .venv/bin/python bench/clip_index.py [--pages 200] [--batch 16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, devices, emit  # noqa: E402

MODEL = "clip-vit-b-32"
SHARED = REPO.parent / "shared" / "data"


def _collection(folder: Path, pages: int) -> None:
    """Copies of the shared scans (each copy a distinct file, so none is a duplicate)."""
    sources = sorted(p for p in SHARED.rglob("*") if p.suffix.lower() in (".jpg", ".tif", ".jp2", ".png")
                     and not p.name.endswith(".gt.tif"))
    count = 0
    while count < pages:
        for source in sources:
            target = folder / f"{count:04d}-{source.name}"
            shutil.copyfile(source, target)
            with target.open("ab") as handle:  # trailing bytes: a different file, the same picture
                handle.write(count.to_bytes(4, "little"))
            count += 1
            if count == pages:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.batch, args.device = 4, 2, "cpu"

    from engine.ingest.scan_import import import_scans
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project
    from engine.retrieval.indexer import ClipInput, clip_pixels, encode_pixels, index_project
    from engine.retrieval.search import prepare_text_tower

    store = bench_store([MODEL], args.smoke)
    from engine.imaging.isolated import shared_decode_pool

    shared_decode_pool().submit(int).result()  # the app starts its decoder processes once, at its start
    figures: dict[str, object] = {"bench": "clip_index", "model": MODEL, "pages": args.pages, "batch": args.batch}
    with tempfile.TemporaryDirectory() as scratch:
        scans = Path(scratch) / "scans"
        scans.mkdir()
        _collection(scans, args.pages)
        for device in devices(args.device):
            service = ModelService(store, ModelManager(device=DeviceChoice(device)))
            with Project.create(Path(scratch) / f"project-{device}") as project:
                import_scans(project, [scans])
                network = service.run(MODEL, lambda loaded: loaded)
                spec = ClipInput(network.image_size, network.mean, network.std)
                sample = clip_pixels(next(scans.iterdir()), 0, None, 1600, 2867, spec)
                tensors = [sample.copy() for _ in range(args.pages)]
                service.run_batches(MODEL, tensors[:args.batch], encode_pixels, batch_size=args.batch)  # warm-up
                prepare_text_tower(service, MODEL)  # once per installed model, not per run: not timed
                started = time.perf_counter()
                service.run_batches(MODEL, tensors, encode_pixels, batch_size=args.batch)
                model_only = args.pages / (time.perf_counter() - started)
                started = time.perf_counter()
                result = index_project(project, service, MODEL, batch_size=args.batch)
                e2e = result.embedded / (time.perf_counter() - started)
                assert result.embedded == args.pages and not result.failed, result.failed
            figures[f"e2e_img_s@{device}"] = round(e2e, 2)
            figures[f"model_only_img_s@{device}"] = round(model_only, 2)
            figures[f"ratio@{device}"] = round(e2e / model_only, 3)
            figures["e2e_img_s"], figures["model_only_img_s"] = round(e2e, 2), round(model_only, 2)
            figures["ratio"], figures["device"] = round(e2e / model_only, 3), device
            figures["precision"] = service.precision_of(MODEL)
            figures["runtime"] = service.run(MODEL, lambda loaded: loaded.runtime)
            checked = service.run(MODEL, lambda loaded: loaded._int8_images)  # noqa: SLF001
            if checked:
                figures["int8_check_cosines"] = {name: round(value, 5) for name, value in checked.cosines.items()}
            if device == "cpu":
                figures["runtimes"] = _runtimes(store, tensors, args.batch, Path(scratch))
    emit(figures)


def _runtimes(store: object, tensors: list, batch: int, scratch: Path) -> dict[str, dict[str, float]]:
    """Model-only images/s of the image tower per runtime and precision, with cosine to torch float32."""
    import os

    import numpy as np
    import torch

    from engine.models.precision import cpu_has_bf16
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService

    pixels = torch.from_numpy(np.stack(tensors[:max(batch * 4, batch)]))
    found: dict[str, dict[str, float]] = {}
    reference = None

    def timed(name: str, encode: object) -> None:
        nonlocal reference
        encode(pixels[:batch])  # warm-up
        started = time.perf_counter()
        vectors = np.concatenate([encode(pixels[start:start + batch]) for start in range(0, len(pixels), batch)])
        rate = len(pixels) / (time.perf_counter() - started)
        reference = vectors if reference is None else reference
        found[name] = {"img_s": round(rate, 2),
                       "cosine_min": round(float((vectors * reference).sum(axis=1).min()), 5)}

    for half in ([False, True] if cpu_has_bf16() else [False]):
        os.environ["MARGINALIA_CPU_BF16"] = "1" if half else "0"
        service = ModelService(store, ModelManager(device=DeviceChoice("cpu")))
        service.run(MODEL, lambda net: setattr(net, "_int8_images", False))  # torch itself, for the table
        timed(f"torch_{service.precision_of(MODEL)}",
              lambda batch_pixels: service.run(MODEL, lambda net: net.encode_images(batch_pixels).numpy()))
        if not half:
            model = service.run(MODEL, lambda net: net.model)
            sessions = _onnx_sessions(model, pixels[:batch], scratch)
        service.unload(MODEL)
    os.environ.pop("MARGINALIA_CPU_BF16", None)
    for name, session in sessions.items():
        timed(name, lambda batch_pixels: _unit(session.run(None, {"pixels": batch_pixels.numpy()})[0]))
    return found


def _unit(vectors):  # noqa: ANN001, ANN202
    import numpy as np

    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _onnx_sessions(model: object, example: object, scratch: Path) -> dict[str, object]:
    """The product's own export of the image tower in float32 and by each int8 recipe (the product keeps only
    the int8 files and uses the first that its check finds faithful here)."""
    import torch

    from engine.models.adapters.clip_onnx import RECIPES, export_image_tower
    from engine.models.derived import onnx_session

    plain = scratch / "visual.onnx"
    export_image_tower(model, example, plain, scratch)
    paths = {"onnxruntime_fp32": plain, **{f"onnxruntime_{recipe.name.replace('-', '_')}": scratch / recipe.file_name
                                           for recipe in RECIPES}}
    return {name: onnx_session(path, threads=torch.get_num_threads()) for name, path in paths.items()}


if __name__ == "__main__":
    main()
