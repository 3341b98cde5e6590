"""A single-file project: the SQLite database in the project folder (a curator alone).

What is SQLite's own: the write lock taken at a unit of work's start (``BEGIN IMMEDIATE``, waiting politely for
another process), the backup kept before an upgrade and once a day, and the quick check that tells damage.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine.errors import (
    JobCancelled,
    ProjectBusyError,
    ProjectError,
    ProjectReadOnlyError,
)
from engine.jobs import CancelToken, describe_duration
from engine.paths import DB_FILENAME
from engine.store.database import (
    BUSY_TIMEOUT_MS,
    SCHEMA_HEAD,
    current_revision,
    is_busy_error,
    is_read_only_error,
    open_engine,
    open_read_only_engine,
    upgrade_to_head,
)
from engine.store.integrity import (
    ProjectDamagedError,
    check_problems,
    damaged_error,
    is_damage_error,
    keep_daily_copy,
)

# How long a writer waits for another process before giving up (it says so while it waits).
WRITE_WAIT_S = 300.0
_WAIT_STEP_MS = 500
WAITING_MESSAGE = "Waiting for another Marginalia process that is writing to this project…"


class SqliteStore:
    """The project database file; see :class:`engine.project.Project` for what it is used for."""

    is_team = False

    def __init__(self, folder: Path, engine: Engine, *, read_only: bool) -> None:
        self.folder = folder
        self.engine = engine
        self.read_only = read_only

    @property
    def db_path(self) -> Path:
        return self.folder / DB_FILENAME

    @property
    def where(self) -> str:
        return f"the project in {self.folder}"

    @classmethod
    def open(cls, folder: Path, *, read_only: bool, new: bool = False) -> SqliteStore:
        return cls._open_read_only(folder) if read_only else cls._open(folder, new=new)

    @classmethod
    def _open_read_only(cls, folder: Path) -> SqliteStore:
        db_path = folder / DB_FILENAME
        try:
            engine = open_read_only_engine(db_path)
        except Exception as error:  # noqa: BLE001 - any failure to read is reported the same way
            raise ProjectError(f"The project database {db_path} cannot be read ({error}). "
                               "It may be damaged; it was not changed.") from error
        if current_revision(engine) != SCHEMA_HEAD:
            engine.dispose()
            raise ProjectReadOnlyError(
                f"The project in {folder} is read-only here and was saved by another version of Marginalia, "
                "so it cannot be upgraded in place. Copy the project folder somewhere you can write to and "
                "open the copy; the original was not changed.")
        return cls(folder, engine, read_only=True)

    @classmethod
    def _open(cls, folder: Path, *, new: bool) -> SqliteStore:
        db_path = folder / DB_FILENAME
        engine = open_engine(db_path)
        try:
            upgrade_to_head(engine, db_path)
            if not new:
                keep_daily_copy(engine, db_path)
        except (SQLAlchemyDatabaseError, sqlite3.DatabaseError) as error:
            busy = is_busy_error(error)
            found = check_problems(engine) if not busy and is_damage_error(error) else None
            engine.dispose()
            if busy:
                raise ProjectBusyError(
                    f"Another Marginalia process is changing the project in {folder} (an upgrade, perhaps) and "
                    "did not finish in time; try again in a moment. Nothing was changed.") from error
            if found is not None:
                raise damaged_error(db_path, found) from error
            raise ProjectError(f"The project database {db_path} cannot be read "
                               f"({getattr(error, 'orig', error)}); it was not changed.") from error
        except Exception:
            engine.dispose()
            raise
        return cls(folder, engine, read_only=False)

    def damage(self, error: BaseException | None = None) -> ProjectDamagedError | None:
        """The damage ``error`` shows (or, with none, SQLite's quick check finds); ``None`` when sound."""
        if error is not None and not is_damage_error(error):
            return None
        found = check_problems(self.engine)
        return damaged_error(self.db_path, found) if found or error is not None else None

    def begin_writing(self, session: Session, cancel: CancelToken | None,
                      tell_waiting: Callable[[str], None] | None) -> None:
        """Take the write lock now; while another process holds it, wait (saying so once), up to
        :data:`WRITE_WAIT_S`."""
        started = time.monotonic()
        told = False
        while True:
            connection = session.connection()
            try:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={_WAIT_STEP_MS}")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as error:
                session.rollback()
                if not is_busy_error(error):
                    raise
            finally:
                # Pooled connections keep their settings: never hand one back with the short wait.
                session.connection().exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if cancel is not None and cancel.cancelled:
                raise JobCancelled()
            if time.monotonic() - started > WRITE_WAIT_S:
                raise ProjectBusyError(
                    f"Another Marginalia process has been writing to the project in {self.folder} for more than "
                    f"{describe_duration(WRITE_WAIT_S)}; nothing was changed here. Try again when it has finished.")
            if not told and tell_waiting is not None:
                tell_waiting(WAITING_MESSAGE)
                told = True

    def plain_error(self, error: SQLAlchemyDatabaseError, read_only_error: Callable[[], Exception]) -> Exception | None:
        """What to tell the curator for a database error (``None``: raise it as it is)."""
        if not isinstance(error, OperationalError):
            return None
        if is_busy_error(error):
            return ProjectBusyError(
                f"Another Marginalia process is writing to the project in {self.folder} and did not finish in "
                "time; this change was not saved. Try again in a moment.")
        if is_read_only_error(error):
            return read_only_error()
        return ProjectError(f"The project database could not be used ({error.orig}); nothing was changed.")

    def listen(self, on_change: Callable[[object], None]) -> None:
        return None  # one computer: its windows show their own edits

    def close(self) -> None:
        self.engine.dispose()
