"""Find text (Hi-SAM): strokes, and words in lines in paragraphs, on a large scan.

A full-size Hi-SAM ViT-B (the published shapes, random weights), loaded through the real adapter over a
full-size SAM ViT-B from a model store, on the SBB scan (2577×3633) read in 1024-px windows at its own
scale (12 windows; blank ones are not read). Prints one JSON line:

- ``strokes_s_per_page``: the stroke mask of the page (one encoder pass and the S-Decoder per window);
- ``hierarchy_s_per_page``: paragraphs, lines and words (their strokes read again for the points) (point prompts, H-Decoder, Matrix NMS,
  the word branch for the lines kept, grouping across windows), stored as proposals;
- ``prompts_decoded``: point prompts the H-Decoder decoded for the page (structured prompts in rounds by
  default; ``--points N``: the authors' exhaustive sampling of N random stroke pixels a window);
- ``device``, ``precision``, ``cpu_flags``, ``windows``, ``points_per_window``, ``lines_per_window``.

Random weights score every line alike, so the bench keeps every point's line and caps them at
``--lines`` per window (a 1024-px window of a printed page holds about 30–60 lines): the word branch then
runs about as often as with a trained model on a dense page.

    .venv/bin/python bench/hisam.py [--device cpu] [--points 400] [--lines 60] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, cpu_flags, devices, emit  # noqa: E402

MODEL = "hi-sam-vit-b"
SCAN = REPO.parent / "shared" / "data" / "manuscripts" / "SBB0000F29300010000_0002.tif"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--points", type=int, default=None,
                        help="the authors' exhaustive sampling: random points per window (default: structured prompts)")
    parser.add_argument("--lines", type=int, default=60, help="lines kept per window")
    add_smoke_flag(parser)
    args = parser.parse_args()

    from PIL import Image

    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project
    from engine.text.hierarchy import TextOptions
    from engine.text.run import find_text

    device = "cpu" if args.smoke else devices(args.device)[-1]
    store = bench_store([MODEL], args.smoke)
    service = ModelService(store, ModelManager(device=DeviceChoice(device)))
    window, points, lines = (256, 4, 4) if args.smoke else (1024, args.points, args.lines)
    loose = dict(window=window, points=points, line_score=-1e9, nms_score=-1e9, stroke_threshold=-1e9,
                 max_lines=lines)
    with tempfile.TemporaryDirectory() as workspace_name:
        workspace = Path(workspace_name)
        (workspace / "scans").mkdir()
        if args.smoke:  # the tiny model on a small page (two windows), to check that the bench still works
            Image.open(SCAN).reduce(12).save(workspace / "scans" / "page.png")
        else:
            shutil.copy(SCAN, workspace / "scans")
        with Project.create(workspace / "project", name="Bench") as project:
            import_scans(project, [workspace / "scans"])
            (row,) = list_images(project)
            service.run(MODEL, lambda network: None)  # loaded before timing
            started = time.perf_counter()
            strokes = find_text(project, service, MODEL, [row.id], {"strokes"}, TextOptions(**loose),
                                creator="bench")
            strokes_s = time.perf_counter() - started
            started = time.perf_counter()
            hierarchy = find_text(project, service, MODEL, [row.id], {"paragraphs", "lines", "words"},
                                  TextOptions(**loose), creator="bench")
            hierarchy_s = time.perf_counter() - started
    from engine.text.windows import plan_windows

    emit({"bench": "hisam", "model": MODEL, "device": device, "page": f"{row.width}x{row.height}",
          "windows": len(plan_windows(row.width, row.height, window)),
          "precision": service.precision_of(MODEL), "cpu_flags": cpu_flags(),
          "points_per_window": points or "structured", "prompts_decoded": hierarchy.prompts, "lines_per_window": lines,
          "strokes_s_per_page": round(strokes_s, 2), "hierarchy_s_per_page": round(hierarchy_s, 2),
          "found": {"paragraphs": hierarchy.paragraphs, "lines": hierarchy.lines, "words": hierarchy.words,
                    "strokes": strokes.strokes}, "smoke": args.smoke})


if __name__ == "__main__":
    main()
