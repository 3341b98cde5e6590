"""Fixtures for team projects: the run's one PostgreSQL server, a fresh database per test, and ``any_project``,
a new project on each of the two databases (store tests take it to run on both).

Clients find the password as curators' computers do, in a pgpass file (``PGPASSFILE``): no URL, project file or
message of the tests' ever holds it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

TEMPLATE_DB = "marginalia_project_template"


@pytest.fixture(scope="session")
def postgres(shared_servers, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The run's PostgreSQL server (started once, shared by every worker); its facts and a pgpass file."""
    from tests.postgres_server import start_postgres

    facts = shared_servers.get("postgres", start_postgres)
    pgpass = tmp_path_factory.mktemp("pgpass") / "pgpass"
    pgpass.write_text(f"{facts['host']}:{facts['port']}:*:{facts['superuser']}:{facts['password']}\n",
                      encoding="utf-8")
    pgpass.chmod(0o600)
    return {**facts, "pgpass": str(pgpass)}


def address(facts: dict[str, Any], database: str, user: str | None = None) -> str:
    return f"postgresql://{user or facts['superuser']}@{facts['host']}:{facts['port']}/{database}"


def admin_sql(facts: dict[str, Any], statement: str, database: str = "postgres") -> list[tuple]:
    import psycopg

    from tests.postgres_server import superuser_connection

    with psycopg.connect(**superuser_connection(facts, database)) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


def make_login(postgres: dict[str, Any], name: str) -> str:
    """A login role on the server, its password in the run's pgpass file (as on a curator's computer)."""
    import secrets

    password = secrets.token_urlsafe(12)
    admin_sql(postgres, f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    with Path(postgres["pgpass"]).open("a", encoding="utf-8") as lines:
        lines.write(f"{postgres['host']}:{postgres['port']}:*:{name}:{password}\n")
    return password


@pytest.fixture
def team_database(postgres: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty database on the run's server; its address (no password: that is in ``PGPASSFILE``)."""
    monkeypatch.setenv("PGPASSFILE", postgres["pgpass"])
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin_sql(postgres, f'CREATE DATABASE "{name}"')
    return address(postgres, name)


@pytest.fixture(scope="session")
def _team_template(postgres: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, shared_servers) -> str:
    """A database holding a new project made by ``Project.create`` (migrations included), that tests copy."""
    import os

    from filelock import FileLock

    from engine.project import Project
    from engine.store.team import parse_address

    os.environ["PGPASSFILE"] = postgres["pgpass"]
    with FileLock(str(shared_servers.folder / "team-template.lock")):
        exists = admin_sql(postgres, f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE_DB}'")
        if not exists:
            admin_sql(postgres, f'CREATE DATABASE "{TEMPLATE_DB}"')
            folder = tmp_path_factory.mktemp("team-template") / "project"
            template = parse_address(address(postgres, TEMPLATE_DB))
            Project.create(folder, name="Test project", team_database=template).close()
    return TEMPLATE_DB


def copy_of_database(postgres: dict[str, Any], template: str, folder: Path) -> Path:
    """A new database copied from ``template``, and ``folder`` (made here) as this computer's folder for it."""
    from engine.store.team import parse_address, write_connection

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin_sql(postgres, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    folder.mkdir()
    write_connection(folder, parse_address(address(postgres, name)))
    return folder


def add_page(project: Any, sha256: str = "a" * 64, width: int = 1000, height: int = 800) -> int:
    """A page row (no file behind it: the store's tests need only its size); its id."""
    from engine.store.schema import Image

    with project.unit_of_work() as session:
        image = Image(path=f"/scans/{sha256[:8]}.tif", sha256=sha256, width=width, height=height, format="TIFF",
                      mode="RGB", file_size=10, file_mtime=0.0)
        session.add(image)
        session.flush()
        return image.id


@pytest.fixture
def team_project_folder(postgres: dict[str, Any], _team_template: str, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new, empty team project (a copy of the template database) and its folder on this computer."""
    monkeypatch.setenv("PGPASSFILE", postgres["pgpass"])
    return copy_of_database(postgres, _team_template, tmp_path / "project")


def new_project_folder(request: pytest.FixtureRequest, database: str, tmp_path: Path, template: Path) -> Path:
    """A new, empty project's folder on ``database`` ("sqlite" or "postgresql")."""
    if database == "sqlite":
        shutil.copytree(template, tmp_path / "project")
        return tmp_path / "project"
    return request.getfixturevalue("team_project_folder")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_project(request: pytest.FixtureRequest, tmp_path: Path, _new_project_template: Path):
    """A new, empty project on SQLite, then on PostgreSQL: store tests that take it run on both."""
    from engine.project import Project

    with Project.open(new_project_folder(request, request.param, tmp_path, _new_project_template)) as opened:
        yield opened
