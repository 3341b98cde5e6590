"""Moving a whole project between its two homes: a single SQLite file and a team's PostgreSQL database.

``share`` copies a curator's project into a team database; ``export-project`` copies a team project back into one
file for archiving. Either way the source is only read, every row keeps its id (so caches keyed by ids stay
right), the target's id counters continue after the copied rows, and the copy is checked before it is called
done: each table's row count and a digest of its every value, read back from both sides.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select

from engine.errors import ProjectError
from engine.jobs import CancelToken, ProgressCallback, report
from engine.store.schema import Base

_CHUNK = 2_000
# Leases belong to the windows open on one database; a copy starts with none.
_NOT_COPIED = {"page_lease"}


def copied_tables() -> list[Table]:
    return [table for table in Base.metadata.sorted_tables if table.name not in _NOT_COPIED]


def copy_rows(source: Engine, target: Engine, *, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> dict[str, str]:
    """Copy every row of ``source`` into ``target``'s empty tables in one transaction; the digest of each table
    as copied (:func:`table_digests`), read in one snapshot of the source even while others edit it.

    ``target`` must hold the same schema revision and no rows but a new project's own one (replaced)."""
    counts = table_counts(source)
    total, done = sum(counts.values()), 0
    digests = {}
    snapshot = {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
    with source.connect().execution_options(**snapshot) as reading, reading.begin(), target.begin() as writing:
        for table in copied_tables():
            if table.name == "project":
                writing.execute(table.delete())
            elif writing.execute(select(func.count()).select_from(table)).scalar():
                raise ProjectError(f"The target already holds {table.name} rows: a project is copied only into an "
                                   "empty one. Nothing was copied.")
            digest = hashlib.sha256()
            key = list(table.primary_key.columns)
            for rows in _chunks(reading.execute(select(table).order_by(*key))):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                for row in rows:
                    _digest_row(digest, row)
                writing.execute(insert(table), [dict(row._mapping) for row in rows])
                done += len(rows)
                report(progress, done, total, f"Copying {table.name}")
            digests[table.name] = digest.hexdigest()
        if writing.dialect.name == "postgresql":
            _continue_counters(writing)
    return digests


def _chunks(rows: Iterable[Any]) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _continue_counters(connection: Any) -> None:
    # Rows went in with their ids; each table's sequence must continue after the largest.
    for table in copied_tables():
        (key,) = table.primary_key.columns
        if not key.autoincrement or table.name == "page_lease":
            continue
        sequence = connection.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table.name}', '{key.name}')").scalar()
        if sequence:
            connection.exec_driver_sql(
                f"SELECT setval('{sequence}', COALESCE((SELECT max({key.name}) FROM {table.name}), 0) + 1, false)")


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
                for table in copied_tables()}


def table_digests(engine: Engine) -> dict[str, str]:
    """Per table, a digest of every value of every row in key order, read through the models' types, so that
    the same project gives the same digests on SQLite and on PostgreSQL."""
    digests = {}
    with engine.connect() as connection:
        for table in copied_tables():
            digest = hashlib.sha256()
            key = list(table.primary_key.columns)
            for row in connection.execute(select(table).order_by(*key)):
                _digest_row(digest, row)
            digests[table.name] = digest.hexdigest()
    return digests


def _digest_row(digest: Any, row: Any) -> None:
    digest.update(json.dumps([_plain(value) for value in row], separators=(",", ":")).encode())
    digest.update(b"\n")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if hasattr(value, "value") and not isinstance(value, int | float | str):  # an enumeration
        return value.value
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    return value


def verify_copy(copied: dict[str, str], target: Engine) -> None:
    """Refuse, naming the tables, when ``target`` differs in any row or value from what was copied into it."""
    found = table_digests(target)
    differing = [name for name, digest in copied.items() if found.get(name) != digest]
    if differing:
        counts = table_counts(target)
        raise ProjectError(f"The copy's {', '.join(f'{name} ({counts[name]} rows)' for name in differing)} differ from "
                           "the original's rows or values.")
