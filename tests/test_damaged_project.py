"""A damaged database is said to be damaged, in plain words naming the good copy, and nothing writes into it
(issue 26, items 11 and the lock message of 15)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

import samples
from cli_runner import run_cli
from damaged_db import flip_a_page, project_with_work
from engine.errors import ProjectBusyError
from engine.inventory import list_images
from engine.project import Project
from engine.store.integrity import ProjectDamagedError, backup_path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_database_is_named_nothing_is_written_and_the_copy_brings_it_back(tmp_path: Path) -> None:
    folder = project_with_work(tmp_path / "project", tmp_path / "scans")
    db, backup = folder / "project.sqlite", backup_path(folder / "project.sqlite")
    assert backup.is_file()
    flip_a_page(db)
    damaged = _sha(db)
    samples.write_jpeg(tmp_path / "scans" / "new.jpg")
    runs = {"import": run_cli("import", str(folder), str(tmp_path / "scans" / "new.jpg")),
            "export": run_cli("export", str(folder), "--out", str(tmp_path / "out.json")),
            "page": run_cli("export", str(folder), "--format", "page", "--out", str(tmp_path / "page"))}
    for command, run in runs.items():
        assert run.returncode == 1, command
        assert "is damaged" in run.stderr and "project.sqlite.backup" in run.stderr, (command, run.stderr)
        assert "SELECT" not in run.stderr and "[SQL" not in run.stderr and "Traceback" not in run.stderr
    assert _sha(db) == damaged  # nothing written into it
    assert not (tmp_path / "out.json").exists() and not list((tmp_path / "page").glob("*.xml"))
    with Project.open(folder) as project:
        with pytest.raises(ProjectDamagedError):
            project.check_intact()
        with pytest.raises(ProjectDamagedError):  # and from then on, no session at all
            with project.unit_of_work():
                pass
    # What the message says to do brings the work of the copy back.
    shutil.move(db, tmp_path / "damaged.sqlite")
    shutil.copy(backup, db)
    with Project.open(folder) as project:
        project.check_intact()
        assert list_images(project)[0].accepted == 1500


def test_a_plain_lock_is_not_called_damage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("engine.store.database.BUSY_TIMEOUT_MS", 200)  # SQLite's wait, for new connections
    folder = tmp_path / "project"
    Project.create(folder).close()
    with sqlite3.connect(folder / "project.sqlite") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0004'")  # an upgrade is due
    holder = sqlite3.connect(folder / "project.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        with pytest.raises(ProjectBusyError) as refused:
            Project.open(folder)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "damaged" not in str(refused.value) and "try again" in str(refused.value)
