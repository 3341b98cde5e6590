"""Find by description: Grounding DINO per page, tiled and not, re-filtering, and a batch over pages.

A full-size Grounding DINO (tiny: the published shapes, random weights) loaded through the real adapter
from a model store, on the SBB scan (2577×3633) and other shared pages. Prints one JSON line:

- ``s_per_page``: one page, seen whole (the model's own 800-px view); ``s_per_page_tiled``: the same page
  with tiling on (the whole page and a few views as large as the model's input allows, batched),
  ``tiled_vs_whole`` their ratio, ``tiles_scale_vs_whole`` how much closer the tiles show the page; with
  ``--fine``, ``s_per_page_fine``: 800-px squares at the page's own scale;
- ``refilter_ms``: a threshold change on that page, from the cached raw output (no model);
  ``refilter_merge_ms``: the same with the tiles' boxes merged (what a slider move costs before the
  proposals are stored);
- ``pages_per_s_batch``: the engine's batch over ``--pages`` pages (decoding in the decoder processes, ahead
  of the model), and ``batch_vs_model_only``: the model-only time per page divided by the batch's time per
  page (1.0: decoding entirely hidden);
- ``device``.

    .venv/bin/python bench/detect.py [--pages 4] [--device cpu] [--fine] [--smoke]
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

from harness import REPO, add_smoke_flag, bench_store, cpu_flags, devices, emit  # noqa: E402

MODEL = "grounding-dino-tiny"
SHARED = REPO.parent / "shared" / "data" / "manuscripts"
SCANS = ("SBB0000F29300010000_0002.tif", "bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg",
         "kant_aufklaerung_1784_0017.tif")
PHRASES = ["decorated initial", "coat of arms", "woodcut"]


def _closer(views: list) -> float:
    """How much closer than the whole page the tiles show it (the model's 800 × 1333 input)."""

    def scale(view) -> float:  # noqa: ANN001
        x0, y0, x1, y1 = view.box
        return min(800 / min(x1 - x0, y1 - y0), 1333 / max(x1 - x0, y1 - y0))

    return round(min(scale(v) for v in views[1:]) / scale(views[0]), 2) if len(views) > 1 else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4, help="pages in the batch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fine", action="store_true", help="also time the fine tiles (slow: minutes a page)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.device = 2, "cpu"

    from PIL import Image

    from engine.categories import add_category
    from engine.detection.detect import DetectOptions, PhrasePrompt, detect, run_model
    from engine.detection.raw import refilter
    from engine.detection.tiling import Tiling, merge
    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project

    device = devices(args.device)[-1]
    store = bench_store([MODEL], args.smoke)
    service = ModelService(store, ModelManager(device=DeviceChoice(device)))
    with tempfile.TemporaryDirectory() as workspace_name:
        workspace = Path(workspace_name)
        scans = workspace / "scans"
        scans.mkdir()
        for index in range(args.pages):
            name = SCANS[index % len(SCANS)]
            shutil.copy(SHARED / name, scans / f"{index:02d}_{name}")
        page = Image.open(SHARED / SCANS[0]).convert("RGB")
        if args.smoke:
            page = page.reduce(8)  # the tiny model sees 128 px: a small page keeps its tiles few
        run_model(service, MODEL, page.crop((0, 0, 400, 400)), PHRASES, Tiling.OFF)  # warm-up, not timed
        started = time.perf_counter()
        whole = run_model(service, MODEL, page, PHRASES, Tiling.OFF)
        s_per_page = time.perf_counter() - started
        started = time.perf_counter()
        tiled = run_model(service, MODEL, page, PHRASES, Tiling.ON)
        s_per_page_tiled = time.perf_counter() - started
        fine_figures = {}
        if args.fine or args.smoke:
            started = time.perf_counter()
            fine = run_model(service, MODEL, page, PHRASES, Tiling.FINE)
            fine_figures = {"views_fine": len(fine.views), "s_per_page_fine": round(time.perf_counter() - started, 3)}
        refilters, refilter_merges = [], []
        for threshold in (0.2, 0.3, 0.4, 0.5, 0.6):
            started = time.perf_counter()
            candidates = refilter(tiled, threshold, 0.25)
            refilters.append((time.perf_counter() - started) * 1000)
            merge(candidates, tiled.views)
            refilter_merges.append((time.perf_counter() - started) * 1000)

        with Project.create(workspace / "project", name="Bench") as project:
            import_scans(project, [scans])
            rows = list_images(project)
            prompts = [PhrasePrompt(phrase, add_category(project, phrase.capitalize()).id) for phrase in PHRASES]
            model_only = []
            for row in rows:  # the model alone on each page, decoded beforehand
                image = Image.open(row.path).convert("RGB")
                started = time.perf_counter()
                run_model(service, MODEL, image, PHRASES, Tiling.OFF)
                model_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = detect(project, service, MODEL, [row.id for row in rows], prompts,
                            DetectOptions(tiling=Tiling.OFF), creator="bench")
            batch_s = time.perf_counter() - started
            assert report.model_runs == len(rows)
    emit({"bench": "detect", "model": MODEL, "device": device, "page": f"{page.width}x{page.height}",
          "views_tiled": len(tiled.views), "tiles_scale_vs_whole": _closer(tiled.views),
          "s_per_page": round(s_per_page, 3),
          "s_per_page_tiled": round(s_per_page_tiled, 3), "tiled_vs_whole": round(s_per_page_tiled / s_per_page, 2),
          **fine_figures, "cpu_flags": cpu_flags(), "refilter_ms": round(statistics.median(refilters), 2),
          "refilter_merge_ms": round(statistics.median(refilter_merges), 1),
          "pages": len(rows), "pages_per_s_batch": round(len(rows) / batch_s, 3),
          "model_only_s_per_page": round(statistics.mean(model_only), 3),
          "batch_vs_model_only": round(statistics.mean(model_only) / (batch_s / len(rows)), 3),
          "boxes_whole_page": len(refilter(whole, 0.35, 0.25)), "smoke": args.smoke})


if __name__ == "__main__":
    main()
