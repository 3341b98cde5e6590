"""Time from launching the app to its main window being shown and painted.

Prints one JSON line: ``window_visible_s`` is the median of several starts (a new process each
time, the disk cache warm as at a curator's second start) of ``main.py gui``, and ``cold_s`` the very
first one. It also reports whether torch was imported at start-up (it must not be).
``--installed PATH`` times an installed app instead (its ``marginalia`` program, or the folder holding it).

    .venv/bin/python bench/startup.py [--runs N] [--installed /opt/marginalia]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _one_start(env: dict[str, str], program: list[str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen([*program, "gui", "--report-startup"], stdout=subprocess.PIPE, text=True, env=env,
                               cwd=REPO)
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "window-visible":
            elapsed = time.perf_counter() - started
            break
    else:
        raise RuntimeError("the app never reported a visible window")
    process.wait(timeout=60)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="one start, to check that the bench still works")
    parser.add_argument("--installed", type=Path, help="an installed app: its marginalia program or its folder")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 1
    program = [sys.executable, str(REPO / "main.py")]
    if args.installed is not None:
        installed = args.installed / "marginalia" if args.installed.is_dir() else args.installed
        program = [str(installed)]
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "MARGINALIA_DATA_DIR": data_dir, "MARGINALIA_CURATOR": "Bench"}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        cold = _one_start(env, program)  # the first start also warms the disk cache for the others
        times = [_one_start(env, program) for _ in range(args.runs)]
        probe = subprocess.run(
            [sys.executable, "-c", "import sys, gui.app, cli.app; print('torch' in sys.modules)"],
            capture_output=True, text=True, env=env, cwd=REPO)
    print(json.dumps({
        "window_visible_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "cold_s": round(cold, 3),
        "runs": len(times),
        "installed": str(program[0]) if args.installed is not None else None,
        # Asked of the source tree (the installed app runs the same code).
        "torch_imported_at_startup": probe.stdout.strip() == "True",
        "platform": env["QT_QPA_PLATFORM"],
    }))


if __name__ == "__main__":
    main()
