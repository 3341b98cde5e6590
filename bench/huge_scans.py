"""Map-sized scans: peak memory of importing and of opening them in the viewer, and how long the viewer takes.

Generates a 30000×20000 JPEG and a 20000×15000 LZW TIFF (600 and 300
megapixels), imports each into a fresh project and opens it in the viewer
(offscreen), each in a process of its own. Memory is the peak of the summed
resident memory of that process and its decoder processes, sampled every
20 ms. ``preview_s``: from asking for the page to its preview on the canvas;
``full_res_s``: to full-resolution tiles ready (the first time, which builds
the page's pyramid file); ``frame_ms_100``: drawing a 1600×1000 view at 100 %
afterwards. Prints one JSON line. Targets: import < 1 GB, viewer < 1.5 GB,
preview <= 3 s.

    .venv/bin/python bench/huge_scans.py [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIZES = {"jpeg": (30_000, 20_000), "tiff": (20_000, 15_000)}
SMOKE_SIZES = {"jpeg": (3_000, 2_000), "tiff": (2_000, 1_500)}


def _make(kind: str, size: tuple[int, int], path: Path) -> None:
    """A scan-like page (paper tone, a grid of 'text' lines, noise), written by libvips without holding it."""
    import pyvips

    width, height = size
    noise = pyvips.Image.gaussnoise(512, 512, mean=0, sigma=12).cast("char")
    texture = noise.replicate(width // 512 + 1, height // 512 + 1).crop(0, 0, width, height)
    xyz = pyvips.Image.xyz(width, height)
    lines = ((xyz[1] % 48) < 6) & ((xyz[0] % 900) < 780)
    grey = (lines.ifthenelse(60, 228) + texture).cast("uchar")
    page = grey.bandjoin([grey - 8, grey - 24]).cast("uchar").copy(interpretation="srgb")
    if kind == "jpeg":
        page.jpegsave(str(path), Q=85)
    else:
        page.tiffsave(str(path), compression="lzw", tile=False)


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        stack.extend(int(child) for child in children)
    return total


def _measured(arguments: list[str], env: dict[str, str]) -> tuple[dict, int]:
    process = subprocess.Popen([sys.executable, __file__, *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate(timeout=1800)
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{arguments[:2]} failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), peak


def _child_import(project: Path, scan: Path) -> dict:
    from engine.ingest.scan_import import import_scans
    from engine.project import Project

    started = time.perf_counter()
    with Project.create(project) as opened:
        report = import_scans(opened, [scan])
    failed = [result.reason for result in report.results if result.outcome.value != "imported"]
    assert not failed, failed
    return {"import_s": round(time.perf_counter() - started, 2)}


def _child_gui(project: Path) -> dict:
    from PySide6.QtCore import QElapsedTimer, QPointF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QApplication

    from engine.inventory import list_images
    from engine.project import Project
    from gui.canvas.view import ImageCanvas
    from gui.page_loader import PageLoader
    from gui.workers import JobRunner

    app = QApplication.instance() or QApplication([])
    opened = Project.open(project)
    (row,) = list_images(opened)
    canvas = ImageCanvas()
    canvas.resize(1600, 1000)
    canvas.show()
    jobs = JobRunner()
    failures: list[str] = []
    loader = PageLoader(jobs, failures.append, lambda: opened.cache_dir)
    marks: dict[str, float] = {}
    clock = QElapsedTimer()
    loader.on_loaded = lambda: marks.setdefault("full", clock.elapsed() / 1000)
    page = canvas.show_page(f"bench-{row.id}", row.width, row.height, None)
    original = page.add_preview

    def preview_arrived(image) -> None:  # noqa: ANN001
        marks.setdefault("preview", clock.elapsed() / 1000)
        original(image)

    page.add_preview = preview_arrived  # type: ignore[method-assign]
    clock.start()
    loader.load(row, page)
    while "full" not in marks and not failures and clock.elapsed() < 600_000:
        app.processEvents()
        time.sleep(0.005)
    assert not failures, failures
    canvas.set_zoom(1.0, QPointF(row.width / 2, row.height / 2))
    target = QImage(canvas.viewport().size(), QImage.Format.Format_ARGB32_Premultiplied)
    frames = []
    for step in range(6):
        canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 300 * (step > 0))
        started = time.perf_counter()
        painter = QPainter(target)
        canvas.render(painter)
        painter.end()
        frames.append((time.perf_counter() - started) * 1000)
    loader.cancel()
    opened.close()
    return {"preview_s": round(marks["preview"], 2), "full_res_s": round(marks["full"], 2),
            "first_frame_ms_100": round(frames[0], 1), "frame_ms_100": round(sorted(frames)[len(frames) // 2], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small pages (and a lowered threshold), in seconds")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        result = _child_import(Path(paths[0]), Path(paths[1])) if kind == "import" else _child_gui(Path(paths[0]))
        print(json.dumps(result))
        return
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    sizes = SMOKE_SIZES if args.smoke else SIZES
    if args.smoke:
        env["MARGINALIA_HUGE_PIXELS"] = "1000000"  # the big-page path, on small pages
    figures: dict[str, object] = {"bench": "huge_scans", "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as scratch:
        for kind, size in sizes.items():
            scan = Path(scratch) / f"scan.{'jpg' if kind == 'jpeg' else 'tif'}"
            _make(kind, size, scan)
            label = f"{kind}_{size[0]}x{size[1]}"
            project = Path(scratch) / f"project-{kind}"
            timings, peak = _measured(["--child", "import", str(project), str(scan)], env)
            figures[f"peak_rss_mb_import_{label}"] = round(peak / 2**20)
            figures[f"import_s_{label}"] = timings["import_s"]
            timings, peak = _measured(["--child", "gui", str(project)], env)
            figures[f"peak_rss_mb_gui_open_{label}"] = round(peak / 2**20)
            for key, value in timings.items():
                figures[f"{key}_{label}"] = value
            scan.unlink()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
