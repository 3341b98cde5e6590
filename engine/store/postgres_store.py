"""A team project: the same schema on a PostgreSQL server, shared by several curators' computers.

The server does what SQLite's file lock did: rows are locked by the statements that change them, so no unit
of work waits for a whole-database lock. Schema upgrades take an advisory lock, so two computers opening a
project after an update do not both upgrade it; a failed upgrade rolls back whole (PostgreSQL's DDL is
transactional). Whether this curator may write is the server's decision (their role's grants), read once at
opening to show the project read-only, and enforced by the server on every statement anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session

from engine.errors import (
    ConnectionLostError,
    ProjectBusyError,
    ProjectError,
    ProjectReadOnlyError,
    ProjectVersionError,
)
from engine.jobs import CancelToken
from engine.store.changes import Change, ChangeListener, track_own_connections
from engine.store.database import SCHEMA_HEAD, read_json
from engine.store.team import safe_address

# Any number fits; it names "a Marginalia schema upgrade" among the server's advisory locks.
_UPGRADE_LOCK = 0x4D617267
_CONNECT_TIMEOUT_S = 5
# A statement waiting this long for another's row lock gives up and is said to be busy.
_LOCK_TIMEOUT = "20s"
_PRIVILEGE = "42501"
_BUSY = {"40001", "40P01", "55P03", "57014"}  # serialization, deadlock, lock not available, cancelled (timeout)


def make_engine(url: URL) -> Engine:
    engine = create_engine(url, json_deserializer=read_json, pool_size=4, max_overflow=8,
                           connect_args={"connect_timeout": _CONNECT_TIMEOUT_S, "application_name": "Marginalia",
                                         "options": f"-c lock_timeout={_LOCK_TIMEOUT}"})
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_use)
    return engine


# A connection idle this long is asked whether the server is still there before a unit of work gets it, so that
# one dropped by a restart is replaced unseen. Asking every time would cost a round trip per edit; a connection
# used this recently that has died fails its unit of work plainly (ConnectionLostError), and SQLAlchemy then
# replaces every connection of the pool.
_PING_AFTER_IDLE_S = 2.0


def _ping_if_idle(connection: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get("last_used", 0.0) < _PING_AFTER_IDLE_S:
        return
    try:
        connection.execute("SELECT 1")
        connection.rollback()
    except Exception as error:  # noqa: BLE001 - any failure means this connection is gone; the pool makes another
        raise DisconnectionError(str(error)) from error


def _note_use(_connection: Any, record: Any) -> None:
    record.info["last_used"] = time.monotonic()


def unreachable(url: URL, error: BaseException) -> ProjectError:
    reason = str(getattr(error, "orig", error)).strip().splitlines()
    detail = reason[0] if reason else type(error).__name__
    return ConnectionLostError(
        f"The team database {safe_address(url)} cannot be reached ({detail}). Check the network and that the "
        "server is running; your password belongs in ~/.pgpass (or PGPASSWORD). Nothing was changed.")


class PostgresStore:
    """The team database of a project folder; see :class:`engine.project.Project` for what it is used for."""

    is_team = True

    def __init__(self, folder: Path, url: URL, engine: Engine, own_pids: set[int], *, read_only: bool) -> None:
        self.folder = folder
        self.url = url
        self.engine = engine
        self.read_only = read_only
        self._own_pids = own_pids

    def listen(self, on_change: Callable[[Change], None]) -> ChangeListener:
        """Other curators' committed changes, told to ``on_change`` from a thread of the listener's own."""
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return ChangeListener(conninfo, self._own_pids, on_change).start()

    @property
    def where(self) -> str:
        return f"the team project {safe_address(self.url)}"

    @classmethod
    def open(cls, folder: Path, url: URL, *, read_only: bool | None = None) -> PostgresStore:
        engine = make_engine(url)
        own_pids = track_own_connections(engine)  # before any connection is made
        try:
            writable = _may_write(engine)
            if not read_only and writable:
                _upgrade(engine)
            elif _revision(engine) != SCHEMA_HEAD:
                raise ProjectReadOnlyError(
                    f"The team project {safe_address(url)} was saved by another version of Marginalia and your "
                    "role may not upgrade it: ask the project's administrator to open it once with this version.")
        except DBAPIError as error:
            engine.dispose()
            # Failing to connect at all (refused, timed out, authentication) comes without a SQLSTATE.
            if isinstance(error, OperationalError) or _sqlstate(error)[:2] in {"08", "28", "3D"}:
                raise unreachable(url, error) from error
            raise ProjectError(f"The team database {safe_address(url)} could not be used "
                               f"({str(error.orig).strip()}); nothing was changed.") from error
        except Exception:
            engine.dispose()
            raise
        return cls(folder, url, engine, own_pids, read_only=bool(read_only) or not writable)

    def damage(self, error: BaseException | None = None) -> None:
        return None  # the server guards its own files; there is no file here to check

    def begin_writing(self, session: Session, cancel: CancelToken | None,
                      tell_waiting: Callable[[str], None] | None) -> None:
        return None  # rows are locked as they are changed; a long wait ends in lock_timeout, said as busy

    def plain_error(self, error: SQLAlchemyDatabaseError, read_only_error: Callable[[], Exception]) -> Exception | None:
        state = _sqlstate(error)
        if state == _PRIVILEGE:
            return ProjectReadOnlyError(
                f"Your role in {self.where} does not allow this change (the server refused it: "
                f"{_first_line(error)}). Nothing was changed; ask the project's administrator if you need it.")
        if state in _BUSY:
            return ProjectBusyError(f"Another curator was changing the same annotations in {self.where} and this "
                                    "change did not get its turn in time; it was not saved. Try again.")
        # A connection that broke, or could not be made (refused, timed out: no SQLSTATE then), or a server
        # shutting down (57P).
        broken = isinstance(error, OperationalError) and not state
        if broken or getattr(error, "connection_invalidated", False) or state.startswith(("08", "57P")):
            return ConnectionLostError(
                f"The connection to {self.where} was lost (the server restarted, or the network dropped); this "
                "change was not saved. Marginalia reconnects by itself: try again in a moment.")
        return None

    def close(self) -> None:
        self.engine.dispose()


def _sqlstate(error: BaseException) -> str:
    return str(getattr(getattr(error, "orig", None), "sqlstate", None) or "")


def _first_line(error: BaseException) -> str:
    lines = str(getattr(error, "orig", error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _may_write(engine: Engine) -> bool:
    with engine.connect() as connection:
        exists = connection.exec_driver_sql("SELECT to_regclass('annotation') IS NOT NULL").scalar()
        if not exists:  # a new, empty database: whoever may create tables in it sets it up
            return bool(connection.exec_driver_sql(
                "SELECT has_schema_privilege(current_schema(), 'CREATE')").scalar())
        return bool(connection.exec_driver_sql("SELECT has_table_privilege('annotation', 'INSERT')").scalar())


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _revision_on(connection)


def _revision_on(connection: Connection) -> str | None:
    if not connection.exec_driver_sql("SELECT to_regclass('alembic_version') IS NOT NULL").scalar():
        return None
    row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row is not None else None


def _upgrade(engine: Engine) -> None:
    if _revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command

    from engine.store.database import alembic_config, known_revision

    config = alembic_config()
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
        current = _revision_on(connection)  # again, under the lock: another computer may have upgraded meanwhile
        if current is not None:
            if not known_revision(current):
                raise ProjectVersionError(
                    f"This team project was saved by a newer version of Marginalia (schema {current}). "
                    "Update Marginalia to open it; the project was not changed.")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if current is not None:  # tables a newer revision made need the team's grants too
        from engine.store.team_roles import set_up_roles

        set_up_roles(engine)
