"""DINO attention on a large scan: a page's maps, a live re-threshold, and discovery over pages.

Full-size DINO ViT-S/8 and DINOv2-reg small (the published shapes, random weights) loaded through the real
adapter from a model store, on the SBB scan (2577×3633) at the default 112 patches along its longer side.
Prints one JSON line:

- ``s_per_page``: per model, the page's maps (decoding not included);
- ``threshold_ms``: the mass threshold and its regions, from the cached map (what a slider move costs);
- ``pages_per_s_batch`` and ``batch_vs_model_only`` (discovery over ``--pages`` pages: the model-only time
  per page divided by the batch's time per page; 1.0 means decoding and storing cost nothing);
- ``device``.

    .venv/bin/python bench/attention.py [--pages 4] [--device cpu] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, devices, emit  # noqa: E402

MODELS = ("dino-vits8", "dinov2-reg-small")
SHARED = REPO.parent / "shared" / "data" / "manuscripts"
SCANS = ("SBB0000F29300010000_0002.tif", "bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg",
         "kant_aufklaerung_1784_0017.tif")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--device", default="auto")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.pages = 2

    from PIL import Image

    from engine.attention.discover import regions_of
    from engine.attention.maps import attention_of
    from engine.attention.run import discover
    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project

    device = "cpu" if args.smoke else devices(args.device)[-1]
    store = bench_store(list(MODELS), args.smoke)
    service = ModelService(store, ModelManager(device=DeviceChoice(device)))
    page = Image.open(SHARED / SCANS[0]).convert("RGB")
    if args.smoke:
        page = page.reduce(8)
    figures: dict[str, object] = {"bench": "attention", "device": device, "page": f"{page.width}x{page.height}"}
    per_page, thresholds = {}, []
    for model_id in MODELS:
        service.run(model_id, lambda network: attention_of(network, page.reduce(8), 16))  # warm-up
        started = time.perf_counter()
        attention = service.run(model_id, lambda network: attention_of(network, page))
        per_page[model_id] = round(time.perf_counter() - started, 3)
        for share in (0.3, 0.45, 0.6, 0.75, 0.9):
            started = time.perf_counter()
            regions_of(attention, "mean", share)
            thresholds.append((time.perf_counter() - started) * 1000)
    figures["s_per_page"] = per_page
    figures["threshold_ms"] = round(statistics.median(thresholds), 2)

    with tempfile.TemporaryDirectory() as workspace_name:
        workspace = Path(workspace_name)
        (workspace / "scans").mkdir()
        for index in range(args.pages):
            name = SCANS[index % len(SCANS)]
            shutil.copy(SHARED / name, workspace / "scans" / f"{index:02d}_{name}")
        with Project.create(workspace / "project", name="Bench") as project:
            import_scans(project, [workspace / "scans"])
            rows = list_images(project)
            model_only = []
            for row in rows:
                image = Image.open(row.path).convert("RGB")
                started = time.perf_counter()
                service.run(MODELS[0], lambda network, i=image: attention_of(network, i))
                model_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = discover(project, service, MODELS[0], [row.id for row in rows], creator="bench")
            batch_s = time.perf_counter() - started
    figures.update({"pages": len(rows), "pages_per_s_batch": round(len(rows) / batch_s, 3),
                    "batch_vs_model_only": round(statistics.mean(model_only) / (batch_s / len(rows)), 3),
                    "proposed": report.proposed, "smoke": args.smoke})
    emit(figures)


if __name__ == "__main__":
    main()
