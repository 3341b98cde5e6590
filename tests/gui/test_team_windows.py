"""Two windows on one team project (two curators, each with their own connection): one's review shows in the
other within a second, on the real event loop, without the page being opened again; an undo of work someone
has changed since is refused in words and leaves their change."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.store.team import parse_address
from engine.store.types import AnnotationStatus
from engine.team_projects import share_project
from tests.gui.conftest import open_and_wait, shown_window


SCANS_TEMPLATE_DB = "marginalia_scans_template"


@pytest.fixture(scope="session")
def _team_scans_template(_scans_project_template: Path, postgres, shared_servers,
                         tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database holding the scans project with a model's proposals on every page, shared into it once per run
    (its pages point at the run's template copy of the scans, which the tests only read)."""
    import os
    import shutil

    from filelock import FileLock

    from engine.annotations import Geometry, Provenance, create_annotations
    from engine.categories import list_categories
    from engine.inventory import list_images
    from engine.project import Project
    from engine.store.types import SourceKind
    from tests.team_fixtures import address, admin_sql

    os.environ["PGPASSFILE"] = postgres["pgpass"]
    with FileLock(str(shared_servers.folder / "team-scans-template.lock")):
        if not admin_sql(postgres, f"SELECT 1 FROM pg_database WHERE datname = '{SCANS_TEMPLATE_DB}'"):
            source = tmp_path_factory.mktemp("scans-with-proposals") / "project"
            shutil.copytree(_scans_project_template / "project", source)
            with Project.open(source) as project:
                category = list_categories(project)[0].id
                for page in list_images(project):
                    shapes = [Geometry(bbox=(100 + 300 * k, 200, 200, 120)) for k in range(3)]
                    create_annotations(project, image_id=page.id, category_id=category, geometries=shapes,
                                       creator="model", status=AnnotationStatus.PROPOSED,
                                       provenances=[Provenance(SourceKind.MODEL, "gdino", "1", "initial", 0.7)] * 3)
            admin_sql(postgres, f'CREATE DATABASE "{SCANS_TEMPLATE_DB}"')
            share_project(source, parse_address(address(postgres, SCANS_TEMPLATE_DB)),
                          tmp_path_factory.mktemp("scans-team-template") / "team")
    return SCANS_TEMPLATE_DB


@pytest.fixture
def team_folder(_team_scans_template: str, postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scans project with a model's proposals on every page, in a team database of the test's own (a copy of
    the run's template), and a new folder for it on this computer (no caches yet)."""
    from tests.team_fixtures import copy_of_database

    monkeypatch.setenv("PGPASSFILE", postgres["pgpass"])
    return copy_of_database(postgres, _team_scans_template, tmp_path / "team")


def _activate(qtbot, window) -> None:
    """Bring ``window`` to the front, as a curator's click does: its menu's shortcuts then reach it."""
    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)
    window.canvas.setFocus()


def _status(window, annotation_id: int) -> AnnotationStatus:
    return next(record.status for record in window.labelling.records() if record.id == annotation_id)


def test_a_review_in_one_window_shows_in_the_other_within_a_second_and_a_stale_undo_is_refused(
        qtbot, team_folder: Path, postgres) -> None:
    """Seconds: two real windows open the same shared page of scans."""
    ada, ben = shown_window(qtbot), shown_window(qtbot)
    try:
        for window in (ada, ben):
            open_and_wait(qtbot, window, team_folder)
        qtbot.waitUntil(lambda: ada.team_changes.listening and ben.team_changes.listening, timeout=5_000)
        assert ada.labelling.image_id == ben.labelling.image_id
        target = next(r.id for r in ada.labelling.records() if r.status is AnnotationStatus.PROPOSED)
        view = ben.canvas.viewport()
        ben_zoom = ben.canvas.transform().m11()
        _activate(qtbot, ada)
        ada.canvas.select_annotations([target])
        begun = time.monotonic()
        qtbot.keyClick(ada.canvas, Qt.Key.Key_A)  # accept, with the key a curator presses
        assert _status(ada, target) is AnnotationStatus.ACCEPTED
        qtbot.waitUntil(lambda: _status(ben, target) is AnnotationStatus.ACCEPTED, timeout=1_000)
        assert time.monotonic() - begun < 1.0
        # Ben's page was updated in place: the same page, at his zoom.
        assert ben.canvas.transform().m11() == ben_zoom and ben.labelling.image_id == ada.labelling.image_id
        assert view.isVisible()
        # Ben rejects what Ada accepted; Ada's undo of her acceptance would now undo Ben's work: refused.
        _activate(qtbot, ben)
        ben.canvas.select_annotations([target])
        assert ben.labelling.selected() == [target]
        qtbot.keyClick(ben.canvas, Qt.Key.Key_R)
        qtbot.waitUntil(lambda: _status(ada, target) is AnnotationStatus.REJECTED, timeout=1_000)
        _activate(qtbot, ada)
        qtbot.keyClick(ada.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        messages = [note.label.text() for note in ada.notifications.notifications()]
        assert any(message.startswith("Cannot undo:") and "had been changed by" in message for message in messages), \
            messages
        assert _status(ada, target) is AnnotationStatus.REJECTED and _status(ben, target) is AnnotationStatus.REJECTED
        assert not ada.undo_stack.canUndo()  # the refused step left the history
    finally:
        ada.close()
        ben.close()
    from engine.paths import log_file

    written = log_file().read_text(encoding="utf-8", errors="replace") if log_file().is_file() else ""
    assert postgres["password"] not in written
    assert postgres["password"] not in "".join(path.read_text(encoding="utf-8", errors="replace")
                                               for path in team_folder.rglob("*") if path.suffix in {".json", ".ini"})


def test_a_page_open_in_one_window_is_said_to_be_its_and_left_out_of_the_others_review_queue(
        qtbot, team_folder: Path) -> None:
    """Seconds: two real windows open the same shared pages of scans."""
    ada, ben = shown_window(qtbot), shown_window(qtbot)
    try:
        open_and_wait(qtbot, ada, team_folder)
        page = ada.labelling.image_id
        qtbot.waitUntil(lambda: ada.labelling.leases.image_id == page and not ada.jobs.running_jobs(), timeout=5_000)
        open_and_wait(qtbot, ben, team_folder)
        assert ben.labelling.image_id == page
        qtbot.waitUntil(lambda: ben.labelling.leases.held_by_other is not None, timeout=5_000)
        assert any("is reviewing this page" in note.label.text() for note in ben.notifications.notifications())
        ben.review.start()
        qtbot.waitUntil(lambda: ben.review.active, timeout=5_000)
        assert page not in {item.image_id for item in ben.review.items}  # Ada's page is hers
        assert any("left out of the queue" in note.label.text() for note in ben.notifications.notifications())
        ada.close()  # gives the page back
        ben.review.stop()
        ben.review.start()
        qtbot.waitUntil(lambda: ben.review.active and page in {item.image_id for item in ben.review.items},
                        timeout=5_000)
    finally:
        ada.close()
        ben.close()


def test_a_computer_that_joins_makes_its_own_thumbnails_from_the_scans(qtbot, team_folder: Path) -> None:
    """Seconds: a real window opens the shared scans and draws their thumbnails."""
    from engine.imaging.thumbnails import thumbnail_path

    thumbnails = team_folder / "cache" / "thumbnails"
    assert not list(thumbnails.rglob("*.jpg"))  # caches are each computer's own: none came with the project
    window = shown_window(qtbot)
    try:
        open_and_wait(qtbot, window, team_folder)
        rows = window.gallery.model.rows()
        qtbot.waitUntil(lambda: all(thumbnail_path(thumbnails, row.sha256, row.page_index).is_file() for row in rows),
                        timeout=20_000)
        model = window.gallery.model
        qtbot.waitUntil(lambda: all(model.data(model.index(k), Qt.ItemDataRole.DecorationRole) is not None
                                    for k in range(len(rows))), timeout=5_000)
    finally:
        window.close()


def test_join_team_project_from_the_file_menu(qtbot, window, team_database: str, tmp_path: Path, monkeypatch) -> None:
    """A curator joins a team project through the File menu: a wrong address is refused in the dialog, the
    password is never asked for, and the project opens."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    from engine.project import Project
    from gui.team_join import JoinTeamDialog

    Project.create(tmp_path / "made-by-the-administrator", name="Kupferstichkabinett",
                   team_database=parse_address(team_database)).close()
    seen: list[str] = []

    def fill() -> None:
        dialog = next((w for w in QApplication.topLevelWidgets() if isinstance(w, JoinTeamDialog) and w.isVisible()),
                      None)
        if dialog is None:
            QTimer.singleShot(50, fill)  # not shown yet
            return
        try:
            join = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
            dialog.address.setText(team_database.replace("@", ":secret@"))
            qtbot.mouseClick(join, Qt.MouseButton.LeftButton)
            seen.append(dialog.problem.text())
            seen.append("still open" if dialog.isVisible() else "closed")  # refused in the dialog, which stays
            dialog.address.setText(team_database)
            dialog.folder.setText(str(tmp_path / "my-desk"))
            qtbot.mouseClick(join, Qt.MouseButton.LeftButton)
        finally:
            if dialog.isVisible():
                dialog.reject()  # never leave a modal dialog open: the test would hang

    QTimer.singleShot(100, fill)
    window.actions_by_name["join-team"].trigger()
    qtbot.waitUntil(lambda: window.project is not None, timeout=10_000)
    assert "~/.pgpass" in seen[0] and "secret" not in seen[0] and seen[1] == "still open"
    assert window.project.is_team and window.project.name == "Kupferstichkabinett"
    assert window.windowTitle().startswith("Kupferstichkabinett")


def test_a_viewer_sees_the_project_read_only_and_the_server_refuses_what_the_window_would_not(
        qtbot, window, team_folder: Path, postgres) -> None:
    from engine.project import Project
    from engine.store.team import read_connection, write_connection
    from engine.store.team_roles import TeamRole, grant_role
    from tests.team_fixtures import make_login

    make_login(postgres, "vera_gui")
    with Project.open(team_folder) as owner:
        grant_role(owner.store.engine, "vera_gui", TeamRole.VIEWER)
    write_connection(team_folder, read_connection(team_folder).set(username="vera_gui"))
    open_and_wait(qtbot, window, team_folder)
    assert window.project.read_only and "(read-only)" in window.windowTitle()
    assert any("viewer" in note.label.text() for note in window.notifications.notifications())
    _activate(qtbot, window)
    proposal = next(r.id for r in window.labelling.records() if r.status is AnnotationStatus.PROPOSED)
    window.canvas.select_annotations([proposal])
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert _status(window, proposal) is AnnotationStatus.PROPOSED  # nothing changed
    refusals = [note.label.text() for note in window.notifications.notifications()
                if note.label.text().startswith(("You may view", "Your role"))]
    assert refusals, [note.label.text() for note in window.notifications.notifications()]
