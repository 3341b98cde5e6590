"""Find text (Hi-SAM): strokes, and words in lines in paragraphs, on a large scan.

A full-size Hi-SAM ViT-B (the published shapes, random weights), loaded through the real adapter over a
full-size SAM ViT-B from a model store, on the SBB scan (2577×3633) read in 1024-px windows at its own
scale (12 windows; blank ones are not read). Prints one JSON line:

- ``strokes_s_per_page``: the stroke mask of the page (one encoder pass and the S-Decoder per window);
- ``hierarchy_s_per_page``: paragraphs, lines and words (each window encoded and its strokes read again for the
  points; point prompts, H-Decoder, Matrix NMS, the word branch for the lines kept, grouping across windows),
  stored as proposals;
- ``prompts_decoded``: point prompts the H-Decoder decoded for the page (structured prompts in rounds by
  default; ``--points N``: the authors' exhaustive sampling of N random stroke pixels a window);
- ``stages``: per pass, where its time went — seconds in the network's steps (``encode``: the ViT per window read;
  ``stroke_logits``: the S-Decoder; ``levels``: the H-Decoder's decodes, with the points decoded, including a
  line's point decoded again for its words; ``words``: the word branch, with the lines), and ``other_s``: the
  rest (prompt choice, Matrix NMS, masks, grouping, storing);
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
            clock = StageClock(service.run(MODEL, lambda network: network))  # loaded before timing
            started = time.perf_counter()
            strokes = find_text(project, service, MODEL, [row.id], {"strokes"}, TextOptions(**loose),
                                creator="bench")
            strokes_s = time.perf_counter() - started
            stages = {"strokes": clock.lap(strokes_s)}
            started = time.perf_counter()
            hierarchy = find_text(project, service, MODEL, [row.id], {"paragraphs", "lines", "words"},
                                  TextOptions(**loose), creator="bench")
            hierarchy_s = time.perf_counter() - started
            stages["hierarchy"] = clock.lap(hierarchy_s)
    from engine.text.windows import plan_windows

    emit({"bench": "hisam", "model": MODEL, "device": device, "page": f"{row.width}x{row.height}",
          "windows": len(plan_windows(row.width, row.height, window)),
          "precision": service.precision_of(MODEL), "cpu_flags": cpu_flags(),
          "points_per_window": points or "structured", "prompts_decoded": hierarchy.prompts,
          "pages_cut": len(hierarchy.pages_cut), "lines_per_window": lines,
          "strokes_s_per_page": round(strokes_s, 2), "hierarchy_s_per_page": round(hierarchy_s, 2),
          "found": {"paragraphs": hierarchy.paragraphs, "lines": hierarchy.lines, "words": hierarchy.words,
                    "strokes": strokes.strokes}, "stages": stages, "smoke": args.smoke})


class StageClock:
    """Seconds the loaded network spends in each step, and how many windows, points or lines each took (its
    methods wrapped on the instance: the bench's own measuring, the product's code unchanged)."""

    STEPS = {  # method: (name in the figures, what it counts, how many in one call)
        "encode": ("encode", "windows", lambda args: 1),
        "stroke_logits": ("stroke_logits", None, None),
        "levels_and_word_inputs": ("levels", "points", lambda args: len(args[1])),
        "words_of": ("words", "lines", lambda args: len(args[0])),
    }

    def __init__(self, network: object) -> None:
        self._restart()
        for step in self.STEPS:
            setattr(network, step, self._timed(step, getattr(network, step)))

    def _timed(self, step: str, method):  # noqa: ANN001, ANN202
        _name, _counted, count = self.STEPS[step]

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[step] += time.perf_counter() - started
                self.items[step] += count(args) if count else 1
        return timed

    def lap(self, total_s: float) -> dict[str, object]:
        """The steps' seconds and counts since the last lap (steps not taken left out), and the rest of ``total_s``."""
        figures: dict[str, object] = {}
        for step, (name, counted, _count) in self.STEPS.items():
            if self.items[step]:
                figures[f"{name}_s"] = round(self.seconds[step], 2)
                if counted:
                    figures[counted] = self.items[step]
        figures["other_s"] = round(total_s - sum(self.seconds.values()), 2)
        self._restart()
        return figures

    def _restart(self) -> None:
        self.seconds = dict.fromkeys(self.STEPS, 0.0)
        self.items = dict.fromkeys(self.STEPS, 0)

if __name__ == "__main__":
    main()
