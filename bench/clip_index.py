"""Indexing throughput: end-to-end pages/s next to the model alone on pre-decoded tensors.

Real-size CLIP ViT-B-32 (random weights, published shapes) from a model store;
the shared scans repeated to at least 200 pages are imported into a scratch
project (not timed), then indexed with the product's indexer (decoding and
resizing in the decoder processes, ahead of the model). The model-only figure
encodes the same number of already prepared tensors with the same batch size,
in the same run. Prints one JSON line with ``e2e_img_s``, ``model_only_img_s``,
``ratio`` and ``device``.

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
    emit(figures)


if __name__ == "__main__":
    main()
