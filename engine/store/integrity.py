"""A damaged project database: telling damage from other failures, SQLite's own check, and the good copy.

A disk fault, a sync tool or a copy cut short can damage a database. SQLite then says "database disk image
is malformed" (or "file is not a database") on whatever statement meets the damage; before this module,
that surfaced as raw SQL, while statements that missed the damaged pages went on writing into the file. Now:

* an error that suggests damage is confirmed with ``PRAGMA quick_check`` and said plainly, naming the good
  copy and how to put it back; from then on the open project refuses every session, so nothing more is
  written into the damaged file;
* imports and exports run the check before they start (a read that misses the damage is no proof);
* a writable project keeps ``project.sqlite.backup``: a consistent copy (SQLite's backup API) made when the
  project is opened and the copy is missing or a day old, and only after the check passed, so a damaged
  file never replaces a good copy.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from engine.errors import ProjectError
from engine.paths import displayable
from engine.store.database import copy_database

BACKUP_SUFFIX = ".backup"
BACKUP_EVERY_S = 24 * 3600
_DAMAGE = ("malformed", "not a database", "database corrupt", "disk image", "file is encrypted")


class ProjectDamagedError(ProjectError):
    """The project's database is damaged; nothing more is written to it."""


def is_damage_error(error: BaseException) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return any(sign in text for sign in _DAMAGE)


def backup_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + BACKUP_SUFFIX)


def check_problems(engine: Engine) -> list[str]:
    """What SQLite's quick check finds wrong (empty when the database is sound)."""
    try:
        with engine.connect() as connection:
            rows = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check(5)").fetchall()]
    except Exception as error:  # noqa: BLE001 - a check that cannot even run has found damage (or says why)
        if not is_damage_error(error):
            raise
        return [str(getattr(error, "orig", error))]
    return [] if rows == ["ok"] else [line.strip() for row in rows for line in row.splitlines()
                                      if line.strip() and not line.startswith("***")]


def damaged_error(db_path: Path, found: list[str]) -> ProjectDamagedError:
    backup = backup_path(db_path)
    what = f" (SQLite's check found: {found[0]})" if found else ""
    if backup.is_file():
        made = datetime.fromtimestamp(backup.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        name = displayable(db_path.name)
        restore = (f"Marginalia's last good copy is {displayable(backup.name)} beside it, from {made}. To go back to "
                   f"it: close Marginalia, move {name} (with its -wal and -shm files, if any) aside — a specialist may save "
                   f"more from it — and copy {displayable(backup.name)} to {name}; the work since the copy was "
                   "made is not in it.")
    else:
        restore = ("Marginalia has no copy of it yet: restore the project folder from your own backup, and keep the "
                   "damaged file aside for a specialist.")
    return ProjectDamagedError(f"The project database {displayable(db_path)} is damaged{what}; nothing more will be "
                               f"written to it. {restore}")


def keep_daily_copy(engine: Engine, db_path: Path) -> None:
    """Refresh ``project.sqlite.backup`` when it is missing or a day old, after a passed check; a damaged
    database raises :class:`ProjectDamagedError` instead."""
    backup = backup_path(db_path)
    try:
        if time.time() - backup.stat().st_mtime < BACKUP_EVERY_S:
            return
    except OSError:
        pass  # none yet
    found = check_problems(engine)
    if found:
        raise damaged_error(db_path, found)
    partial = backup.with_name(backup.name + ".partial")
    try:
        copy_database(db_path, partial)
        os.replace(partial, backup)
    except (OSError, sqlite3.Error):
        pass  # a full disc or a locked file: the older copy stays, and the next opening tries again
    finally:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            leftover.unlink(missing_ok=True)
