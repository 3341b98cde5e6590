"""A team project's connection: which PostgreSQL database holds it, written in the project folder.

The folder keeps the address only (``team-database.json``: host, port, database, user, TLS options), never a
password: PostgreSQL's client library finds that where each computer keeps it (``~/.pgpass``, ``PGPASSWORD``,
a service file), so the folder can be copied, backed up or shared without giving the database away. Caches
(thumbnails, pyramids, embeddings, indexes) stay in the folder, local to each computer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from engine.errors import ProjectError
from engine.paths import TEAM_FILENAME

DRIVER = "postgresql+psycopg"
FORMAT_VERSION = 1


def parse_address(text: str) -> URL:
    """``postgresql://user@host:port/database?sslmode=…`` as SQLAlchemy's URL for the psycopg driver; a password
    in it is refused, saying where it belongs instead."""
    try:
        url = make_url(text.strip())
    except ArgumentError as error:
        raise ProjectError(f"'{text}' is not a PostgreSQL address (postgresql://user@host:port/database).") from error
    if url.get_backend_name() != "postgresql":
        raise ProjectError(f"'{safe_address(url)}' is not a PostgreSQL address (postgresql://user@host:port/database).")
    if url.password is not None:
        raise ProjectError("The address holds a password. A team project never stores one: put it in ~/.pgpass "
                           "(or PGPASSWORD, or a PostgreSQL service file) and give the address without it.")
    if not url.database:
        raise ProjectError(f"The address {safe_address(url)} names no database (…/DATABASE at its end).")
    return url.set(drivername=DRIVER)


def safe_address(url: URL | str) -> str:
    """The address to show or log: never a password, whatever was given."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "(an address that could not be read)"
    shown = url.set(drivername="postgresql", password=None)
    return shown.render_as_string(hide_password=True)


def write_connection(folder: Path, url: URL) -> None:
    assert url.password is None, "a team project's folder never holds a password"
    facts = {"format": FORMAT_VERSION, "database": safe_address(url)}
    path = folder / TEAM_FILENAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_connection(folder: Path) -> URL | None:
    """The team database a project folder names, or ``None`` for a single-file project."""
    path = folder / TEAM_FILENAME
    if not path.is_file():
        return None
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
        address = facts["database"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProjectError(f"{path} cannot be read ({error}); it should name the team's PostgreSQL database. "
                           "Nothing was changed.") from error
    if not isinstance(facts.get("format"), int) or facts["format"] > FORMAT_VERSION:
        raise ProjectError(f"{path} was written by a newer Marginalia; update Marginalia to open this project.")
    return parse_address(address)
