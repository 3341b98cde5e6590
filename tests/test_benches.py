"""Every benchmark still runs: each ``bench/*.py --smoke`` exits 0 and prints one JSON line of figures.

A bench that no test runs rots unnoticed (one did: it imported a function a
later change removed). New scripts in ``bench/`` are picked up by the glob.
Each bench runs in a process of its own, forked from a warm start that has the
heavy libraries imported (``tests/bench_zygote.py``; on Linux, elsewhere a new
process); one runs as a plain process too, and must report the same figures.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if path.name != "harness.py")
ZYGOTE = Path(__file__).resolve().parent / "bench_zygote.py"
# One worker runs them all (`make test` runs with --dist loadgroup), so the libraries are imported once.
pytestmark = pytest.mark.xdist_group("benches")


def _environment(tmp_path: Path) -> dict[str, str]:
    # One OpenMP thread: beside the other test worker, two would wait on each other at every barrier
    # (faiss's training spent a minute so); a smoke run's figures do not depend on it.
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1"}


class WarmStart:
    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=_environment(folder), cwd=BENCH.parent,
                                        start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.lines.get(timeout=180) == "ready"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def run(self, script: Path, args: list[str], env: dict[str, str], folder: Path,
            timeout: float) -> subprocess.CompletedProcess[str]:
        out, err = folder / f"{script.stem}.out", folder / f"{script.stem}.err"
        request = {"script": str(script), "args": args, "env": env, "cwd": str(BENCH.parent), "stdout": str(out),
                   "stderr": str(err)}
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        try:
            answer = json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            self.stop()
            raise
        return subprocess.CompletedProcess([script.name, *args], answer["returncode"], out.read_text(),
                                           err.read_text())

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class PlainStart:
    """Where forking a process that has loaded Qt is not safe (macOS) or possible (Windows): a new process."""

    def run(self, script: Path, args: list[str], env: dict[str, str], folder: Path,
            timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                              cwd=BENCH.parent, timeout=timeout)


@pytest.fixture(scope="session")  # not per module: xdist runs other modules' tests between these
def warm_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmStart | PlainStart]:
    if not sys.platform.startswith("linux"):
        yield PlainStart()
        return
    started = WarmStart(tmp_path_factory.mktemp("bench-warm-start"))
    yield started
    started.process.stdin.close()
    started.process.wait(timeout=30)


def test_the_bench_folder_is_found() -> None:
    assert len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_bench_runs_in_smoke_mode(script: Path, shared_data: Path, tmp_path: Path,
                                  warm_start: WarmStart | PlainStart) -> None:
    """Seconds: each bench builds its tiny models, exports what the product exports at first use, and starts
    processes of its own where that is what it measures."""
    finished = warm_start.run(script, ["--smoke"], _environment(tmp_path), tmp_path, timeout=240)
    _assert_one_line_of_figures(script, finished)


def test_a_warm_started_bench_reports_what_a_plain_process_reports(shared_data: Path, tmp_path: Path,
                                                                   warm_start: WarmStart | PlainStart) -> None:
    """Seconds: the same bench runs twice, once as a plain process that imports everything itself."""
    script = BENCH / "import_scans.py"
    plain = PlainStart().run(script, ["--smoke"], _environment(tmp_path), tmp_path, timeout=240)
    warm = warm_start.run(script, ["--smoke"], _environment(tmp_path), tmp_path, timeout=240)
    figures = [_assert_one_line_of_figures(script, finished) for finished in (plain, warm)]
    assert figures[0].keys() == figures[1].keys()
    failing = tmp_path / "failing.py"
    failing.write_text("import sys\nprint('half a line', file=sys.stderr)\nsys.exit(3)\n")
    refused = warm_start.run(failing, [], _environment(tmp_path), tmp_path, timeout=60)
    assert (refused.returncode, refused.stderr) == (3, "half a line\n")


def _assert_one_line_of_figures(script: Path, finished: subprocess.CompletedProcess[str]) -> dict:
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = [line for line in finished.stdout.splitlines() if line.strip()]
    assert lines, f"{script.name} printed nothing"
    figures = json.loads(lines[-1])
    assert isinstance(figures, dict) and len(figures) >= 3, figures
    numbers = [value for value in _leaves(figures) if isinstance(value, int | float) and not isinstance(value, bool)]
    assert numbers, f"{script.name} printed no figures: {figures}"
    return figures


def _leaves(figures: dict) -> list[object]:
    return [leaf for value in figures.values()
            for leaf in (_leaves(value) if isinstance(value, dict) else [value])]
