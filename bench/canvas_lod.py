"""Canvas smoothness on huge pages: paint times at several zooms, and memory.

Generates a 20000×15000 JPEG (or uses --image), opens it on the real canvas
(offscreen), waits for the full-resolution pyramid, then renders the view at
fit, 25 %, 100 % and 400 % and while panning at 100 %. Prints one JSON line
with the worst and median frame times in ms, the tile cache size and the
process's peak memory.

    .venv/bin/python bench/canvas_lod.py [--image PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.imaging.isolated import load_full_page_shared, load_page_isolated  # noqa: E402
from engine.imaging.pyramid import MemoryPyramid, build_levels  # noqa: E402
from gui.canvas.page_item import PREVIEW_SIDE, SHARED_TILE_CACHE  # noqa: E402
from gui.canvas.qimage import to_qimage  # noqa: E402
from gui.canvas.view import ImageCanvas  # noqa: E402


def _make_huge(path: Path, width: int = 20_000, height: int = 15_000) -> None:
    tile = np.random.default_rng(1).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)
    page = Image.new("RGB", (width, height), (230, 220, 200))
    block = Image.fromarray(tile)
    for y in range(0, height, 3000):
        for x in range(0, width, 3000):
            page.paste(block, (x, y))
    page.save(path, "JPEG", quality=80)


def _frame(canvas: ImageCanvas, target: QImage) -> float:
    started = time.perf_counter()
    target.fill(0)
    painter = QPainter(target)
    canvas.render(painter)
    painter.end()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", type=Path)
    parser.add_argument("--smoke", action="store_true", help="a 3000×2000 page, to check that the bench still works")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as workspace:
        path = args.image or Path(workspace) / "huge.jpg"
        if args.image is None:
            _make_huge(path, *((3000, 2000) if args.smoke else (20_000, 15_000)))
        with Image.open(path) as probe:
            width, height = probe.size
        canvas = ImageCanvas()
        canvas.resize(1600, 1000)
        canvas.show()
        app.processEvents()
        page = canvas.show_page("bench", width, height, None)
        started = time.perf_counter()
        page.add_preview(to_qimage(load_page_isolated(path, max_side=PREVIEW_SIDE)))
        preview_s = time.perf_counter() - started
        shared = load_full_page_shared(path)
        assert shared.image is not None
        page.set_levels(MemoryPyramid(build_levels(shared.image)))
        full_s = time.perf_counter() - started
        target = QImage(canvas.viewport().size(), QImage.Format.Format_ARGB32_Premultiplied)
        frames: dict[str, list[float]] = {}
        canvas.fit()
        frames["fit"] = [_frame(canvas, target) for _ in range(5)]
        for name, zoom in (("25%", 0.25), ("100%", 1.0), ("400%", 4.0)):
            canvas.set_zoom(zoom, QPointF(width / 2, height / 2))
            frames[name] = [_frame(canvas, target) for _ in range(5)]
        canvas.set_zoom(1.0, QPointF(width / 2, height / 2))
        pan = []
        for step in range(60):
            canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 40)
            canvas.verticalScrollBar().setValue(canvas.verticalScrollBar().value() + 25)
            pan.append(_frame(canvas, target))
        frames["pan_100%"] = pan
        page.set_levels(None)
        shared.release()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "image": f"{width}x{height}",
        "preview_ready_s": round(preview_s, 2),
        "full_resolution_ready_s": round(full_s, 2),
        **{f"worst_frame_ms_{k}": round(max(v), 1) for k, v in frames.items()},
        **{f"median_frame_ms_{k}": round(statistics.median(v), 1) for k, v in frames.items()},
        "tile_cache_mb": round(SHARED_TILE_CACHE.used_bytes / 2**20, 1),
        "peak_rss_mb": round(peak_mb),
    }))


if __name__ == "__main__":
    main()
