"""A project: one folder holding the database (or the address of a team's) and its caches.

Layout::

    PROJECT/
      project.sqlite          a curator's own project: the database (WAL mode: -wal and -shm files beside it)
      team-database.json      or a team project: the address of its PostgreSQL database (no password)
      cache/thumbnails/       thumbnails, keyed by content hash (always local to this computer)
      cache/...               model embeddings, pyramids, search indexes

Images stay where the curator keeps them; the database stores their absolute
path and sha256 so that a moved folder can be relinked.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.collection_roots import SESSION_KEY as ROOTS_SESSION_KEY
from engine.collection_roots import CollectionRoots
from engine.errors import ProjectError, ProjectReadOnlyError, StaleEditError
from engine.jobs import CancelToken
from engine.paths import DB_FILENAME, OS_LITTER, PROJECT_MARKERS, TEAM_FILENAME
from engine.store.changes import Change, ChangeListener
from engine.store.database import session_factory
from engine.store.integrity import ProjectDamagedError
from engine.store.schema import ProjectInfo
from engine.store.sqlite_store import SqliteStore
from engine.store.team import read_connection, write_connection


class DatabaseStore(Protocol):
    """Where a project's rows live: its SQLite file (:mod:`engine.store.sqlite_store`) or a team's PostgreSQL
    database (:mod:`engine.store.postgres_store`)."""

    is_team: bool
    engine: Engine
    read_only: bool

    @property
    def where(self) -> str: ...

    def damage(self, error: BaseException | None = None) -> ProjectDamagedError | None: ...

    def begin_writing(self, session: Session, cancel: CancelToken | None,
                      tell_waiting: Callable[[str], None] | None) -> None: ...

    def plain_error(self, error: SQLAlchemyDatabaseError,
                    read_only_error: Callable[[], Exception]) -> Exception | None: ...

    def listen(self, on_change: Callable[[Change], None]) -> ChangeListener | None: ...

    def close(self) -> None: ...


def _holds_project(store: DatabaseStore) -> bool:
    with store.engine.connect() as connection:
        return bool(connection.exec_driver_sql("SELECT count(*) FROM project").scalar())


def _contents(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir() if entry.name.lower() not in OS_LITTER)
    except (FileNotFoundError, NotADirectoryError):
        return []


class Project:
    """An open project. Hand out short sessions with :meth:`unit_of_work`.

    A ``Project`` may be shared between threads; the sessions it hands out may not.
    """

    def __init__(self, folder: Path, store: DatabaseStore) -> None:
        self.folder = folder
        self.store = store
        self.read_only = store.read_only
        # Where this computer finds the scans (pages read through the ORM carry their path as found here).
        self.roots = CollectionRoots.load(folder)
        self._sessions: sessionmaker[Session] = session_factory(store.engine, {ROOTS_SESSION_KEY: self.roots})
        # Told (from the waiting thread) when a write has to wait for another process.
        self.on_waiting: Callable[[str], None] | None = None
        self._damage: ProjectDamagedError | None = None  # once found, every later session is refused
        self._joined = threading.local()  # this thread's session of :meth:`one_transaction`, while it lasts

    # -- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, name: str | None = None, *, empty_folder_only: bool = False,
               team_database: URL | None = None) -> Project:
        """A new project in ``folder``; ``empty_folder_only`` (what a curator's New Project asks) refuses a folder
        that already holds files, rather than mixing a project into them. With ``team_database`` (an address
        from :func:`engine.store.team.parse_address`), the project lives in that PostgreSQL database, which
        must hold no project yet; the folder keeps its address and this computer's caches."""
        folder = Path(folder).expanduser().resolve()
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            raise ProjectError(f"A project already exists in {folder}.")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file, not a folder.")
        others = _contents(folder) if empty_folder_only else []
        if others:
            raise ProjectError(
                f"{folder} is not empty (it holds {len(others)} file(s) or folder(s), such as {others[0]}). A project "
                "goes in an empty folder, or a new one: choose another, or make a new folder inside this one.")
        made = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Cannot create the project folder {folder}: {error.strerror}.") from error
        try:
            if team_database is None:
                project = cls(folder, SqliteStore.open(folder, read_only=False, new=True))
            else:
                project = cls._create_team(folder, team_database)
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # a refused team project leaves nothing; a failed SQLite one keeps its file
            raise
        project.cache_dir.mkdir(parents=True, exist_ok=True)
        with project.unit_of_work() as session:
            if session.get(ProjectInfo, 1) is None:
                session.add(ProjectInfo(id=1, name=name or folder.name))
        return project

    @classmethod
    def _create_team(cls, folder: Path, url: URL) -> Project:
        from engine.store.postgres_store import PostgresStore

        store = PostgresStore.open(folder, url)
        if store.read_only:
            store.close()
            raise ProjectReadOnlyError(f"Your role may not create tables in {store.where}: ask its administrator to "
                                       "make the project, then open it.")
        if _holds_project(store):
            store.close()
            raise ProjectError(f"{store.where} already holds a project: open it (marginalia join) rather than "
                               "making a new one.")
        from engine.store.team_roles import set_up_roles

        set_up_roles(store.engine)  # where this login may create roles; else only the owner writes until it is run
        write_connection(folder, url)
        return cls(folder, store)

    @classmethod
    def open(cls, folder: Path, *, read_only: bool | None = None) -> Project:
        """Open a project; one whose folder or database cannot be written opens read-only."""
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise ProjectError(f"No project folder at {folder}.")
        team = read_connection(folder)
        if team is not None:
            from engine.store.postgres_store import PostgresStore

            project = cls(folder, PostgresStore.open(folder, team, read_only=read_only))
            with contextlib.suppress(OSError):  # a folder we may not write: caches are then not kept
                project.cache_dir.mkdir(parents=True, exist_ok=True)
            return project
        if not (folder / DB_FILENAME).is_file():
            raise ProjectError(f"{folder} is not a Marginalia project (no {DB_FILENAME} inside).")
        if read_only is None:
            read_only = not (os.access(folder, os.W_OK) and os.access(folder / DB_FILENAME, os.W_OK))
        project = cls(folder, SqliteStore.open(folder, read_only=read_only))
        if not read_only:
            project.cache_dir.mkdir(parents=True, exist_ok=True)
        return project

    @classmethod
    def join(cls, folder: Path, team_database: URL) -> Project:
        """This computer's folder for a team project that exists already in ``team_database``."""
        from engine.store.postgres_store import PostgresStore

        folder = Path(folder).expanduser().resolve()
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            raise ProjectError(f"A project already exists in {folder}.")
        folder.mkdir(parents=True, exist_ok=True)
        store = PostgresStore.open(folder, team_database)
        if not _holds_project(store):
            store.close()
            raise ProjectError(f"{store.where} holds no project yet: make one there with marginalia new --db.")
        write_connection(folder, team_database)
        project = cls(folder, store)
        project.cache_dir.mkdir(parents=True, exist_ok=True)
        return project

    def listen(self, on_change: Callable[[Change], None]) -> ChangeListener | None:
        """Start telling ``on_change`` (from another thread) of other curators' changes to a team project; ``None``
        for a single-file project. Stop the listener before closing the project."""
        return self.store.listen(on_change)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- places ------------------------------------------------------------------

    @property
    def is_team(self) -> bool:
        return self.store.is_team

    @property
    def db_path(self) -> Path:
        """The database file of a single-file project (a team project has none here)."""
        return self.folder / (TEAM_FILENAME if self.store.is_team else DB_FILENAME)

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
        """A unit of work that holds the write lock from its start (SQLite; on PostgreSQL rows are locked as they
        change).

        While another process writes, it waits (telling :attr:`on_waiting` once) for up
        to :data:`engine.store.sqlite_store.WRITE_WAIT_S`, checking ``cancel``; then it gives up with
        :class:`ProjectBusyError`. Long jobs write in several of these, so that
        other processes can interleave.
        """
        self.require_writable()
        return self._session(cancel, immediate=True)

    @contextmanager
    def one_transaction(self, cancel: CancelToken | None = None) -> Iterator[Session]:
        """A :meth:`writing` unit of work that every unit of work this thread starts inside it joins: they flush
        into it, and it commits (or rolls back) once at its end. For a batch of pages whose results are
        written together, by code that writes one page at a time."""
        if getattr(self._joined, "session", None) is not None:
            yield self._joined.session
            return
        with self.writing(cancel) as session:
            self._joined.session = session
            try:
                yield session
            finally:
                self._joined.session = None

    def require_writable(self) -> None:
        """Refuse, with the reason, any change to a project that is open read-only."""
        if self.read_only:
            raise self._read_only_error()

    def check_intact(self) -> None:
        """SQLite's quick check, before a long import or export: a damaged database is said to be damaged
        (:mod:`engine.store.integrity`) rather than read around or written into."""
        if self._damage is not None:
            raise self._damage
        found = self.store.damage()
        if found is not None:
            self._damage = found
            raise found

    @contextmanager
    def _session(self, cancel: CancelToken | None, *, immediate: bool) -> Iterator[Session]:
        if self._damage is not None:
            raise self._damage
        joined = getattr(self._joined, "session", None)
        if joined is not None:  # inside one_transaction: part of it, committed with it
            yield joined
            joined.flush()
            return
        session = self._sessions()
        try:
            if immediate:
                self.store.begin_writing(session, cancel, self.on_waiting)
            yield session
            session.commit()
        except SQLAlchemyDatabaseError as error:
            with contextlib.suppress(SQLAlchemyDatabaseError):
                session.rollback()
            damage = self.store.damage(error)
            if damage is not None:
                self._damage = damage
                raise damage from error
            plain = self.store.plain_error(error, self._read_only_error)
            if plain is not None:
                raise plain from error
            raise
        except StaleDataError as error:
            # Two curators' writes met on the same row at the same moment: the later one is refused whole.
            with contextlib.suppress(SQLAlchemyDatabaseError):
                session.rollback()
            raise StaleEditError("Not saved: another curator changed the same annotation at the same moment. "
                                 "The page now shows their change; make yours again if it still applies.",
                                 []) from error
        except BaseException:
            with contextlib.suppress(SQLAlchemyDatabaseError):
                session.rollback()
            raise
        finally:
            session.close()

    def _read_only_error(self) -> ProjectReadOnlyError:
        if self.store.is_team:
            return ProjectReadOnlyError(f"You may view {self.store.where} but not change it (your role there is a "
                                        "viewer's); ask the project's administrator for an annotator's role.")
        return ProjectReadOnlyError(
            f"The project in {self.folder} is open read-only (its folder or database cannot be written): "
            "you can browse, search and export it elsewhere, but not change it.")

    @property
    def name(self) -> str:
        with self.unit_of_work() as session:
            info = session.get(ProjectInfo, 1)
            return info.name if info else self.folder.name
