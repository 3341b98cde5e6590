"""Column types and enumerations shared by the schema."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite itself stores naive text."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class FilePath(TypeDecorator[str]):
    """A file path exactly as the operating system gives it.

    On POSIX a file name is bytes; one that is not valid UTF-8 reaches Python as a
    ``str`` with surrogate escapes, which SQLite's UTF-8 text cannot hold. Such a
    path is stored as its raw bytes (SQLite keeps a BLOB in any column) and comes
    back as the same ``str``, so the file can still be opened. Show it to people
    with :func:`engine.paths.displayable`.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | bytes | None:
        if value is None:
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
            # PostgreSQL's text holds only valid UTF-8 (and no column type may change with the value): the raw
            # bytes go in hex behind a noncharacter that no file name begins with.
            return _RAW_MARK + raw.hex() if dialect.name == "postgresql" else raw
        return value

    def process_result_value(self, value: str | bytes | None, dialect: Dialect) -> str | None:
        if isinstance(value, bytes):
            return value.decode("utf-8", "surrogateescape")
        if value is not None and value.startswith(_RAW_MARK):
            return bytes.fromhex(value[len(_RAW_MARK):]).decode("utf-8", "surrogateescape")
        return value


_RAW_MARK = "\ufffe"


class AnnotationStatus(enum.StrEnum):
    """Where an annotation stands in review."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class SourceKind(enum.StrEnum):
    """Who made an annotation."""

    HUMAN = "human"
    MODEL = "model"
    IMPORT = "import"
