"""Killing the app at any moment loses at most the edit in progress."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from engine.project import Project

REPO = Path(__file__).resolve().parents[2]


def test_a_killed_app_keeps_every_finished_edit(scans_project: Path) -> None:
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        before = session.execute(text("SELECT count(*) FROM annotation")).scalar()
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    driver = subprocess.Popen([sys.executable, str(REPO / "tests" / "gui" / "kill_driver.py"),
                               str(scans_project)], stdout=subprocess.PIPE, text=True, env=env)
    saved = 0
    assert driver.stdout is not None
    for line in driver.stdout:
        if line.startswith("saved "):
            saved = int(line.split()[1])
        if saved >= 80:
            driver.send_signal(signal.SIGKILL)  # no chance to clean up
            break
    driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL

    with sqlite3.connect(scans_project / "project.sqlite") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        after = session.execute(text("SELECT count(*) FROM annotation")).scalar()
        creators = {row[0] for row in session.execute(
            text("SELECT DISTINCT creator FROM annotation WHERE id > (SELECT max(id) - 5 FROM annotation)"))}
    assert saved <= after - before <= saved + 1, (before, saved, after)
    assert creators == {"Killed Curator"}


def test_decoding_workers_do_not_outlive_a_killed_app(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from engine.imaging.isolated import shared_decode_pool\n"
        "pool = shared_decode_pool()\n"
        "pids = [f.result() for f in [pool.submit(os.getpid) for _ in range(8)]]\n"
        "print(' '.join(str(p) for p in set(pids)), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert app.stdout is not None
    workers = [int(pid) for pid in app.stdout.readline().split()]
    assert workers and app.pid not in workers
    app.send_signal(signal.SIGKILL)
    app.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "decoder processes were left behind"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie is already dead
    except FileNotFoundError:
        return False
