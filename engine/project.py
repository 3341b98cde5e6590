"""A project: one folder holding the database and its caches.

Layout::

    PROJECT/
      project.sqlite          the database (WAL mode: -wal and -shm files beside it)
      cache/thumbnails/       thumbnails, keyed by content hash
      cache/...               later: model embeddings

Images stay where the curator keeps them; the database stores their absolute
path and sha256 so that a moved folder can be relinked.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import JobCancelled, ProjectBusyError, ProjectError, ProjectReadOnlyError
from engine.jobs import CancelToken, describe_duration
from engine.paths import DB_FILENAME, OS_LITTER
from engine.store.database import (BUSY_TIMEOUT_MS, SCHEMA_HEAD, current_revision, is_busy_error, is_read_only_error, open_engine,
                                   open_read_only_engine, session_factory, upgrade_to_head)
from engine.store.integrity import ProjectDamagedError, check_problems, damaged_error, is_damage_error, keep_daily_copy
from engine.store.schema import ProjectInfo

# How long a writer waits for another process before giving up (it says so while it waits).
WRITE_WAIT_S = 300.0
_WAIT_STEP_MS = 500
WAITING_MESSAGE = "Waiting for another Marginalia process that is writing to this project…"


def _contents(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir() if entry.name.lower() not in OS_LITTER)
    except (FileNotFoundError, NotADirectoryError):
        return []


class Project:
    """An open project. Hand out short sessions with :meth:`unit_of_work`.

    A ``Project`` may be shared between threads; the sessions it hands out may not.
    """

    def __init__(self, folder: Path, engine: Engine, *, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only
        self._engine = engine
        self._sessions: sessionmaker[Session] = session_factory(engine)
        # Told (from the waiting thread) when a write has to wait for another process.
        self.on_waiting: Callable[[str], None] | None = None
        self._damage: ProjectDamagedError | None = None  # once found, every later session is refused

    # -- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, name: str | None = None, *, empty_folder_only: bool = False) -> Project:
        """A new project in ``folder``; ``empty_folder_only`` (what a curator's New Project asks) refuses a folder
        that already holds files, rather than mixing a project into them."""
        folder = Path(folder).expanduser().resolve()
        if (folder / DB_FILENAME).exists():
            raise ProjectError(f"A project already exists in {folder}.")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file, not a folder.")
        others = _contents(folder) if empty_folder_only else []
        if others:
            raise ProjectError(
                f"{folder} is not empty (it holds {len(others)} file(s) or folder(s), such as {others[0]}). A project "
                "goes in an empty folder, or a new one: choose another, or make a new folder inside this one.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Cannot create the project folder {folder}: {error.strerror}.") from error
        project = cls._connect(folder, new=True)
        with project.unit_of_work() as session:
            session.add(ProjectInfo(name=name or folder.name))
        return project

    @classmethod
    def open(cls, folder: Path, *, read_only: bool | None = None) -> Project:
        """Open a project; one whose folder or database cannot be written opens read-only."""
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise ProjectError(f"No project folder at {folder}.")
        if not (folder / DB_FILENAME).is_file():
            raise ProjectError(f"{folder} is not a Marginalia project (no {DB_FILENAME} inside).")
        if read_only is None:
            read_only = not (os.access(folder, os.W_OK) and os.access(folder / DB_FILENAME, os.W_OK))
        return cls._connect_read_only(folder) if read_only else cls._connect(folder)

    @classmethod
    def _connect_read_only(cls, folder: Path) -> Project:
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
    def _connect(cls, folder: Path, *, new: bool = False) -> Project:
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
        project = cls(folder, engine)
        project.cache_dir.mkdir(parents=True, exist_ok=True)
        return project

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- places ------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.folder / DB_FILENAME

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"

    @property
    def thumbnail_dir(self) -> Path:
        return self.cache_dir / "thumbnails"

    # -- sessions ----------------------------------------------------------------

    def unit_of_work(self) -> AbstractContextManager[Session]:
        """A session that commits on success, rolls back on error and always closes.

        For reading and for small writes. A write that meets another process's lock
        waits a few seconds, then fails with :class:`ProjectBusyError`, never a raw SQL error.
        """
        return self._session(None, immediate=False)

    def writing(self, cancel: CancelToken | None = None) -> AbstractContextManager[Session]:
        """A unit of work that holds the write lock from its start.

        While another process writes, it waits (telling :attr:`on_waiting` once) for up
        to :data:`WRITE_WAIT_S`, checking ``cancel``; then it gives up with
        :class:`ProjectBusyError`. Long jobs write in several of these, so that
        other processes can interleave.
        """
        self.require_writable()
        return self._session(cancel, immediate=True)

    def require_writable(self) -> None:
        """Refuse, with the reason, any change to a project that is open read-only."""
        if self.read_only:
            raise self._read_only_error()

    def check_intact(self) -> None:
        """SQLite's quick check, before a long import or export: a damaged database is said to be damaged
        (:mod:`engine.store.integrity`) rather than read around or written into."""
        if self._damage is not None:
            raise self._damage
        found = check_problems(self._engine)
        if found:
            self._damage = damaged_error(self.db_path, found)
            raise self._damage

    @contextmanager
    def _session(self, cancel: CancelToken | None, *, immediate: bool) -> Iterator[Session]:
        if self._damage is not None:
            raise self._damage
        session = self._sessions()
        try:
            if immediate:
                self._begin_immediate(session, cancel)
            yield session
            session.commit()
        except SQLAlchemyDatabaseError as error:
            with contextlib.suppress(SQLAlchemyDatabaseError):
                session.rollback()
            if is_damage_error(error):
                self._damage = damaged_error(self.db_path, check_problems(self._engine))
                raise self._damage from error
            if isinstance(error, OperationalError):
                raise self._plain(error) from error
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _begin_immediate(self, session: Session, cancel: CancelToken | None) -> None:
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
            if not told and self.on_waiting is not None:
                self.on_waiting(WAITING_MESSAGE)
                told = True

    def _plain(self, error: OperationalError) -> Exception:
        if is_busy_error(error):
            return ProjectBusyError(
                f"Another Marginalia process is writing to the project in {self.folder} and did not finish in "
                "time; this change was not saved. Try again in a moment.")
        if is_read_only_error(error):
            return self._read_only_error()
        return ProjectError(f"The project database could not be used ({error.orig}); nothing was changed.")

    def _read_only_error(self) -> ProjectReadOnlyError:
        return ProjectReadOnlyError(
            f"The project in {self.folder} is open read-only (its folder or database cannot be written): "
            "you can browse, search and export it elsewhere, but not change it.")

    @property
    def name(self) -> str:
        with self.unit_of_work() as session:
            info = session.get(ProjectInfo, 1)
            return info.name if info else self.folder.name
