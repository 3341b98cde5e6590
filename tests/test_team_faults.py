"""Several curators' processes on one team project, and what goes wrong with servers and clients: nothing that
was acknowledged is lost, no raw database error reaches anyone, a stale edit is refused, a server restart is
said plainly and outlived, and a client killed mid-transaction leaves nothing half-written.

Seconds: each writer is a process of its own (as each curator's app is), and two tests start a private server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.annotations import Geometry, create_annotation, get_annotations, set_text
from engine.categories import add_category
from engine.errors import ConnectionLostError
from engine.project import Project
from engine.store.schema import Annotation
from tests.postgres_server import start_postgres, stop_postgres, superuser_connection
from tests.team_fixtures import add_page, address

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import team as team_bench  # noqa: E402


def test_ten_writer_processes_lose_nothing_acknowledged_and_meet_no_raw_error(team_database: str,
                                                                            tmp_path: Path) -> None:
    """Seconds: each writer is a process of its own that imports the engine, as each curator's app does. (Two
    writers: the restart test below.)"""
    writers, edits = 10, 12
    _, ids = team_bench.build(tmp_path / "team", team_database, 200)
    # Three shared rows: ten writers cannot all miss each other on them.
    figures = team_bench.run_writers(tmp_path / "team", ids, writers, edits, tmp_path, shared_rows=3)
    assert figures["exit_codes"] == [0] * writers
    assert figures["lost"] == 0 and figures["raw_errors"] == 0, figures
    assert figures["acknowledged"] + figures["stale_refused"] == writers * edits
    assert figures["stale_refused"] > 0  # they did meet on the shared rows, and were refused, not overwritten


@pytest.fixture
def private_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A server of this test's own, which it may restart."""
    facts = start_postgres(tmp_path / "server")
    import psycopg

    with psycopg.connect(**superuser_connection(facts)) as admin:
        admin.execute("CREATE DATABASE restarted")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{facts['host']}:{facts['port']}:*:{facts['superuser']}:{facts['password']}\n",
                      encoding="utf-8")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    yield facts
    try:
        stop_postgres(facts, mode="immediate")
    finally:
        if facts.get("remove_after"):
            shutil.rmtree(facts["remove_after"], ignore_errors=True)


def _restart(facts: dict[str, Any], pause_s: float = 0.5) -> dict[str, Any]:
    stop_postgres(facts, mode="fast")
    time.sleep(pause_s)
    return start_postgres(Path(facts["home"]), port=facts["port"])


def test_a_server_restart_is_said_plainly_and_outlived(private_server: dict[str, Any], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds: a private server is started, restarted three times, and writer processes run through one
    restart."""
    import engine.store.postgres_store as postgres_store

    facts = private_server
    _, ids = team_bench.build(tmp_path / "team", address(facts, "restarted"), 100)
    with Project.open(tmp_path / "team") as project:
        # A connection idle for a while is asked first: the restart goes unseen.
        monkeypatch.setattr(postgres_store, "_PING_AFTER_IDLE_S", 0.0)
        set_text(project, {ids[0]: "before"}, editor="Ada")
        facts.update(_restart(facts))
        set_text(project, {ids[0]: "unseen"}, editor="Ada")
        # One used a moment ago is not asked: it died with the server, and the edit is refused, in words.
        monkeypatch.setattr(postgres_store, "_PING_AFTER_IDLE_S", 3600.0)
        facts.update(_restart(facts))
        with pytest.raises(ConnectionLostError, match="reconnects by itself") as lost:
            set_text(project, {ids[0]: "during"}, editor="Ada")
        assert facts["password"] not in str(lost.value)
        set_text(project, {ids[0]: "after"}, editor="Ada")  # and the next one goes through on a new connection
        assert get_annotations(project, [ids[0]])[0].text == "after"
    # Two writers in the middle of their edits while the server restarts: they wait, retry, and lose nothing.
    figures = team_bench.run_writers(tmp_path / "team", ids, 2, 80, tmp_path,
                                     during=lambda: facts.update(_restart(facts, pause_s=0.5)))
    assert figures["exit_codes"] == [0, 0], figures
    assert figures["lost"] == 0 and figures["raw_errors"] == 0, figures


_HALF_DONE = """
import sys, time
from engine.annotations import Geometry, shape_fields
from engine.project import Project
from engine.store.schema import Annotation, Image
from engine.store.types import AnnotationStatus, SourceKind
with Project.open(sys.argv[1]) as project, project.unit_of_work() as session:
    image = session.get_one(Image, int(sys.argv[2]))
    session.execute(Annotation.__table__.update().where(Annotation.id == int(sys.argv[3])).values(text="half done"))
    for k in range(500):
        session.add(Annotation(image_id=image.id, category_id=int(sys.argv[4]), source_kind=SourceKind.MODEL,
                               status=AnnotationStatus.PROPOSED, **shape_fields(image, Geometry(bbox=(k, 1, 5, 5)))))
    session.flush()
    print("flushed", flush=True)
    time.sleep(600)
"""


def test_a_client_killed_mid_transaction_leaves_nothing_partial(team_project_folder: Path) -> None:
    with Project.open(team_project_folder) as project:
        page = add_page(project, "c" * 64)
        category = add_category(project, "Word").id
        kept = create_annotation(project, image_id=page, category_id=category, geometry=Geometry(bbox=(1, 1, 9, 9)),
                                 creator="Ada")
        client = subprocess.Popen([sys.executable, "-c", _HALF_DONE, str(team_project_folder), str(page), str(kept.id),
                                   str(category)], stdout=subprocess.PIPE, text=True, cwd=REPO,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
        assert client.stdout is not None and client.stdout.readline().strip() == "flushed"
        os.kill(client.pid, signal.SIGKILL)
        client.wait(timeout=10)
        # The server notices the dead client and rolls its transaction back; its row lock goes with it.
        begun = time.monotonic()
        set_text(project, {kept.id: "mine"}, editor="Ada", expected={kept.id: kept.version})
        assert time.monotonic() - begun < 10
        with project.unit_of_work() as session:
            assert session.query(Annotation).count() == 1
        assert get_annotations(project, [kept.id])[0].text == "mine"
