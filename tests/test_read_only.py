"""A project that cannot be written opens read-only: browse, list, export elsewhere — and clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from engine.coco.exporter import export_coco
from engine.coco.importer import import_coco
from engine.errors import ProjectReadOnlyError
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def finished_project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        import_scans(project, [samples.write_png(tmp_path / "folio.png")])
    return folder


def test_an_unwritable_folder_opens_read_only(finished_project: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    import engine.project as project_module

    monkeypatch.setattr(project_module.os, "access", lambda path, mode: mode != os.W_OK)
    before = (finished_project / "project.sqlite").read_bytes()
    with Project.open(finished_project) as project:
        assert project.read_only
        assert [row.display_name for row in list_images(project)] == ["folio.png"]
        export_coco(project, tmp_path / "elsewhere.json")
        assert json.loads((tmp_path / "elsewhere.json").read_text())["images"][0]["width"] == 300
        with pytest.raises(ProjectReadOnlyError, match="read-only"):
            import_scans(project, [samples.write_jpeg(tmp_path / "new.jpg")])
        coco = tmp_path / "a.json"
        coco.write_text(json.dumps({"images": [], "categories": [{"id": 1, "name": "x"}], "annotations": []}))
        with pytest.raises(ProjectReadOnlyError):
            import_coco(project, coco)
    assert (finished_project / "project.sqlite").read_bytes() == before


def test_a_plain_unit_of_work_cannot_write_either(finished_project: Path) -> None:
    from engine.store.schema import ProjectInfo

    with Project.open(finished_project, read_only=True) as project:
        with pytest.raises(ProjectReadOnlyError), project.unit_of_work() as session:
            session.get(ProjectInfo, 1).name = "changed"
        assert project.name == "project"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="needs a user whom file permissions bind (root writes anyway)")
def test_the_cli_lists_a_project_on_a_read_only_folder(finished_project: Path) -> None:
    for path in [finished_project, *finished_project.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        listed = subprocess.run([sys.executable, str(REPO / "main.py"), "list", str(finished_project)],
                                capture_output=True, text=True, cwd=REPO, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "folio.png" in listed.stdout
    finally:
        for path in [finished_project, *finished_project.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.mark.parametrize("read_only", [True, False])
def test_closing_a_project_leaves_a_query_running_in_another_thread_alone(finished_project: Path,
                                                                          read_only: bool) -> None:
    """The window closes a project while a background job may still be reading it. Closing must not pull
    the connection from under that job (SQLite crashes the process when it is)."""
    import threading

    from sqlalchemy import text

    project = Project.open(finished_project, read_only=read_only)
    checked_out, closed, answers = threading.Event(), threading.Event(), []

    def background_job() -> None:
        with project.unit_of_work() as session:
            session.execute(text("SELECT 1")).scalar()
            checked_out.set()
            closed.wait(5)
            answers.append(session.execute(text("SELECT count(*) FROM image")).scalar())

    worker = threading.Thread(target=background_job)
    worker.start()
    assert checked_out.wait(5)
    project.close()
    closed.set()
    worker.join(5)
    assert answers == [1]
