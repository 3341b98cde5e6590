"""The project's SQLite database: connection settings and schema upgrades.

SQLite runs in WAL mode (readers never block the writer, a crash never leaves
a half-written page) with foreign keys enforced on every connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from engine.errors import ProjectError, ProjectVersionError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: the app's window must not wait for it at start-up.

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _busy_timeout_ms(default: int = 10_000) -> int:
    # Settable so that a test can prove in seconds that a writer waits past it (tests/test_coco_trust.py).
    try:
        return max(100, int(os.environ.get("MARGINALIA_SQLITE_BUSY_TIMEOUT_MS", default)))
    except ValueError:
        return default


# How long one statement waits for another process's write lock before SQLite gives up;
# writers that must wait longer do so in Project.writing(), saying that they wait.
BUSY_TIMEOUT_MS = _busy_timeout_ms()


def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _on_connect_read_only(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def read_json(text: str | bytes) -> Any:
    """A JSON column's value. orjson reads a page's polygons several times faster than the standard
    library (thousands of outlines a page); what it refuses (NaN, integers past 64 bits, written by
    older versions or other tools) is read by the standard library as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def open_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", future=True, json_deserializer=read_json)
    event.listen(engine, "connect", _on_connect)
    return engine


def open_read_only_engine(db_path: Path) -> Engine:
    """An engine that cannot write: for projects on read-only media, shares and archives.

    A WAL database needs its ``-shm`` file; where that cannot be made (a folder we
    may not write), SQLite is told the file is immutable, which reads it without one.
    """
    uri = Path(db_path).resolve().as_uri()
    # A ``creator`` on "sqlite://" would get the in-memory pool, whose dispose() closes every thread's
    # connection, even one in the middle of a query (SQLite then crashes the process): the file pool
    # lets a closing window leave a background reader to finish.
    for options in ("mode=ro", "mode=ro&immutable=1"):
        target = f"{uri}?{options}"
        engine = create_engine("sqlite://", future=True, json_deserializer=read_json, poolclass=QueuePool,
                               creator=lambda target=target: sqlite3.connect(target, uri=True,
                                                                             check_same_thread=False))
        event.listen(engine, "connect", _on_connect_read_only)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            return engine
        except Exception:  # noqa: BLE001 - try the next way of reading it; the last error is raised below
            engine.dispose()
            if options.endswith("immutable=1"):
                raise
    raise AssertionError("unreachable")


def is_busy_error(error: BaseException) -> bool:
    """A write that failed because another connection held the lock."""
    text = str(getattr(error, "orig", error)).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def is_read_only_error(error: BaseException) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return "readonly database" in text or "read-only" in text


def session_factory(engine: Engine, info: dict | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, info=info or {})


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


SCHEMA_HEAD = "0008"  # the newest migration (tests check it is alembic's head): opening needs no alembic


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (alembic's own table), ``None`` for a database without one."""
    with engine.connect() as connection:
        if connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").first() is None:
            return None
        row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row is not None else None


def upgrade_to_head(engine: Engine, db_path: Path) -> None:
    """Bring the schema to the newest revision, keeping a backup of an older file.

    A database from a newer Marginalia is refused rather than touched. SQLite
    cannot roll back every schema change, so a failed upgrade restores the
    backup and reports the project unchanged.
    """
    current = current_revision(engine)
    if current == SCHEMA_HEAD:
        return  # the usual case, decided without importing alembic (a tenth of a second to start)
    head = head_revision()
    if current == head:
        return
    if current is not None and not known_revision(current):
        raise ProjectVersionError(
            f"This project was saved by a newer version of Marginalia (schema {current}). "
            "Update Marginalia to open it; the project was not changed."
        )
    backup = _backup(engine, db_path, current) if current is not None else None
    try:
        _run_migrations(engine)
    except Exception as error:
        if backup is None or is_busy_error(error):
            raise  # another process's lock: the upgrade's transaction changed nothing
        engine.dispose()
        copy_database(backup, db_path)
        raise ProjectError(
            f"Upgrading the project failed ({error}); it was restored unchanged from {backup.name}."
        ) from error


def _run_migrations(engine: Engine) -> None:
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        # Rebuilding a parent table (SQLite's way to alter one) must not cascade
        # deletes into its children: keys are checked once at the end instead.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ProjectError(f"the upgraded database has {len(broken)} broken reference(s)")
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _backup(engine: Engine, db_path: Path, revision: str) -> Path:
    backup_path = db_path.with_name(f"{db_path.name}.before-upgrade-{revision}")
    engine.dispose()
    if not backup_path.exists():
        try:
            copy_database(db_path, backup_path)
        except sqlite3.Error as error:
            backup_path.unlink(missing_ok=True)
            if is_busy_error(error):
                raise  # another process is writing: said as such by the caller
            raise ProjectError(f"Could not back up the project before upgrading it: {error}") from error
    return backup_path


def copy_database(source_path: Path, target_path: Path, *, wait_s: float | None = None) -> None:
    """A consistent copy through SQLite's backup API (WAL contents included). Python's backup retries a
    locked file for ever; this one gives up after ``wait_s`` (default: the busy timeout) with
    ``sqlite3.OperationalError("database is locked")``."""
    wait_s = BUSY_TIMEOUT_MS / 1000 if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s

    def give_up_when_late(_status: int, _remaining: int, _total: int) -> None:
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked (the copy waited too long for another process)")

    source = sqlite3.connect(source_path, timeout=wait_s)
    try:
        target = sqlite3.connect(target_path, timeout=wait_s)
        try:
            source.backup(target, pages=256, progress=give_up_when_late)
        finally:
            target.close()
    finally:
        source.close()


