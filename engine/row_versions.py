"""Edits made on the version of a row that the curator saw, and refused when someone changed it since.

Every annotation row carries a ``version`` that each change raises by one. An edit names the versions it was made
on (``expected``); a row at any other version (another curator, another window, changed it) or gone refuses the
whole edit with :class:`StaleEditError`, and nothing of it is written. Rows are locked while they are checked and
changed, and each UPDATE is also conditional on the version it read, so two edits racing for the same row cannot
both pass: the later one is refused, never applied over the first (no last writer wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session, defer

from engine.errors import StaleEditError
from engine.store.schema import Annotation
from engine.store.types import utc_now

Versions = dict[int, int]
_SHAPE_COLUMNS = (Annotation.polygons, Annotation.rle, Annotation.baseline)
_WHO = ("version", "updated_by", "updated_at", "reviewed_by", "creator")


def guarded_rows(session: Session, ids: Any, expected: Versions | None, *, shapes: bool = False) -> list[Annotation]:
    """The ORM rows ``ids``, locked for this unit of work, after :func:`check_versions`. Their outlines are read only
    if ``shapes`` (a page's polygons can be large, and most edits leave them alone)."""
    query = select(Annotation).where(Annotation.id.in_(list(ids))).order_by(Annotation.id)
    if not shapes:
        query = query.options(*(defer(column) for column in _SHAPE_COLUMNS))
    rows = list(session.scalars(query.with_for_update() if expected else query))
    check_versions(rows, expected)
    return rows


def check_versions(rows: list[Any], expected: Versions | None) -> None:
    """Refuse when a row of ``expected`` is missing from ``rows`` or at another version."""
    if not expected:
        return
    found = {row.id: row for row in rows}
    gone = [annotation_id for annotation_id in expected if annotation_id not in found]
    changed = [row for row in rows if row.id in expected and row.version != expected[row.id]]
    if gone or changed:
        raise StaleEditError(stale_message(changed, gone), sorted([row.id for row in changed] + gone))


def stale_message(changed: list[Any], gone: list[int]) -> str:
    who = sorted({row.updated_by or row.reviewed_by or row.creator for row in changed} - {""})
    parts = []
    if changed:
        by = f" by {', '.join(who)}" if who else ""
        latest = max(row.updated_at for row in changed).astimezone().strftime("%H:%M:%S")
        parts.append(f"{len(changed)} of the annotation(s) you changed had been changed{by} (last at {latest})")
    if gone:
        parts.append(f"{len(gone)} had been deleted")
    return ("Not saved: " + " and ".join(parts) + " since you saw them. Your change was not made over theirs; the "
            "page now shows what is in the project — look, and make your change again if it still applies.")


def change_fields(session: Session, changes: Mapping[int, Mapping[str, Any]], fields: tuple[str, ...], *,
                  editor: str | None, expected: Versions | None,
                  versions: Versions | None) -> dict[int, dict[str, Any]]:
    """Set ``changes[id][field]`` on each row in a few statements (not the ORM's object machinery: an edit is
    made while a curator waits); the rows' old values of ``fields`` (for undo). ``editor=None`` keeps who changed
    the row last as it was."""
    columns = [Annotation.id, *(getattr(Annotation, name) for name in {*_WHO, *fields})]
    query = select(*columns).where(Annotation.id.in_(list(changes))).order_by(Annotation.id)
    rows = session.execute(query.with_for_update() if expected else query).all()
    check_versions(rows, expected)
    if not rows:
        return {}
    now = utc_now()
    table = Annotation.__table__
    seen = bindparam("seen", type_=Integer)
    statement = (table.update().where(table.c.id == bindparam("row_id"), table.c.version == seen)
                 .values(version=seen + 1, updated_at=now,
                         **({"updated_by": editor} if editor is not None else {}),
                         **{name: bindparam(f"new_{name}") for name in fields}))
    values = [{"row_id": row.id, "seen": row.version, **{f"new_{name}": changes[row.id][name] for name in fields}}
              for row in rows]
    done = session.connection().execute(statement, values).rowcount
    if done != len(rows):  # another unit of work changed a row between our read and our write
        raise StaleEditError("Not saved: another curator changed the same annotation at the same moment. The page "
                             "now shows their change; make yours again if it still applies.", [row.id for row in rows])
    if versions is not None:
        versions.update((row.id, row.version + 1) for row in rows)
    return {row.id: {name: getattr(row, name) for name in fields} for row in rows}


def note_versions(rows: list[Annotation], out: Versions | None) -> None:
    if out is not None:
        out.update((row.id, row.version) for row in rows)
