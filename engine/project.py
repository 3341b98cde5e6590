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

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ProjectError
from engine.paths import DB_FILENAME
from engine.store.database import open_engine, session_factory, upgrade_to_head
from engine.store.schema import ProjectInfo



class Project:
    """An open project. Hand out short sessions with :meth:`unit_of_work`.

    A ``Project`` may be shared between threads; the sessions it hands out may not.
    """

    def __init__(self, folder: Path, engine: Engine) -> None:
        self.folder = folder
        self._engine = engine
        self._sessions: sessionmaker[Session] = session_factory(engine)

    # -- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, name: str | None = None) -> Project:
        folder = Path(folder).expanduser().resolve()
        if (folder / DB_FILENAME).exists():
            raise ProjectError(f"A project already exists in {folder}.")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file, not a folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Cannot create the project folder {folder}: {error.strerror}.") from error
        project = cls._connect(folder)
        with project.unit_of_work() as session:
            session.add(ProjectInfo(name=name or folder.name))
        return project

    @classmethod
    def open(cls, folder: Path) -> Project:
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise ProjectError(f"No project folder at {folder}.")
        if not (folder / DB_FILENAME).is_file():
            raise ProjectError(f"{folder} is not a Marginalia project (no {DB_FILENAME} inside).")
        return cls._connect(folder)

    @classmethod
    def _connect(cls, folder: Path) -> Project:
        db_path = folder / DB_FILENAME
        engine = open_engine(db_path)
        try:
            upgrade_to_head(engine, db_path)
        except SQLAlchemyDatabaseError as error:
            engine.dispose()
            raise ProjectError(
                f"The project database {db_path} cannot be read ({error.orig}). "
                "It may be damaged; it was not changed."
            ) from error
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

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits on success, rolls back on error and always closes."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @property
    def name(self) -> str:
        with self.unit_of_work() as session:
            info = session.get(ProjectInfo, 1)
            return info.name if info else self.folder.name
