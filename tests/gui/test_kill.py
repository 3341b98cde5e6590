"""Killing the app at any moment loses at most the edit in progress."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
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
        if saved >= 25:
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
