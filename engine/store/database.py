"""The project's SQLite database: connection settings and schema upgrades.

SQLite runs in WAL mode (readers never block the writer, a crash never leaves
a half-written page) with foreign keys enforced on every connection.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ProjectError, ProjectVersionError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", future=True)
    event.listen(engine, "connect", _on_connect)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, db_path: Path) -> None:
    """Bring the schema to the newest revision, keeping a backup of an older file.

    A database from a newer Marginalia is refused rather than touched.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is not None and not _known_revision(current):
        raise ProjectVersionError(
            f"This project was saved by a newer version of Marginalia (schema {current}). "
            "Update Marginalia to open it; the project was not changed."
        )
    if current is not None:
        _backup(engine, db_path, current)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _known_revision(revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _backup(engine: Engine, db_path: Path, revision: str) -> None:
    backup_path = db_path.with_name(f"{db_path.name}.before-upgrade-{revision}")
    if backup_path.exists():
        return
    engine.dispose()
    try:
        source = sqlite3.connect(db_path)
        try:
            target = sqlite3.connect(backup_path)
            with target:
                source.backup(target)
            target.close()
        finally:
            source.close()
    except sqlite3.Error as error:
        shutil.rmtree(backup_path, ignore_errors=True)
        raise ProjectError(f"Could not back up the project before upgrading it: {error}") from error
