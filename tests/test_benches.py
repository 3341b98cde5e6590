"""Every benchmark still runs: each ``bench/*.py --smoke`` exits 0 and prints one JSON line of figures.

A bench that no test runs rots unnoticed (one did: it imported a function a
later change removed). New scripts in ``bench/`` are picked up by the glob.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if path.name != "harness.py")


def test_the_bench_folder_is_found() -> None:
    assert len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_bench_runs_in_smoke_mode(script: Path, shared_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    finished = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                              env=env, cwd=BENCH.parent, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = [line for line in finished.stdout.splitlines() if line.strip()]
    assert lines, f"{script.name} printed nothing"
    figures = json.loads(lines[-1])
    assert isinstance(figures, dict) and len(figures) >= 3, figures
    numbers = [value for value in _leaves(figures) if isinstance(value, int | float) and not isinstance(value, bool)]
    assert numbers, f"{script.name} printed no figures: {figures}"


def _leaves(figures: dict) -> list[object]:
    return [leaf for value in figures.values()
            for leaf in (_leaves(value) if isinstance(value, dict) else [value])]
