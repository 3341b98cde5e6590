"""Review in bulk from the window: choose by score across the project, accept, undo, redo."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from engine.annotations import Geometry, Provenance, create_annotations
from engine.inventory import list_images
from engine.project import Project
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus, SourceKind
from tests.gui.conftest import open_and_wait

SCORES = [0.95, 0.85, 0.8, 0.79, 0.3]


@pytest.fixture
def proposals(scans_project: Path) -> dict[int, float]:
    """Hi-SAM-like proposals with known scores on both pages; their ids and scores."""
    made: dict[int, float] = {}
    with Project.open(scans_project) as project:
        category = project_category(project)
        for page in list_images(project):
            shapes = [Geometry(bbox=(20 + 40 * i, 30, 30, 12)) for i in range(len(SCORES))]
            origin = [Provenance(SourceKind.MODEL, "hi-sam", "1", "word", score) for score in SCORES]
            for record in create_annotations(project, image_id=page.id, category_id=category, geometries=shapes,
                                             creator="model", provenances=origin, status=AnnotationStatus.PROPOSED):
                made[record.id] = record.score
    return made


def project_category(project: Project) -> int:
    from engine.categories import list_categories

    return list_categories(project)[0].id


def _statuses(folder: Path, ids) -> dict[int, AnnotationStatus]:
    with Project.open(folder) as project, project.unit_of_work() as session:
        return {a.id: a.status for a in session.scalars(select(Annotation).where(Annotation.id.in_(list(ids))))}


def test_accept_by_score_across_the_project_then_undo_and_redo(qtbot, window, scans_project: Path,
                                                                proposals: dict[int, float]) -> None:
    open_and_wait(qtbot, window, scans_project)
    qtbot.keyClick(window.canvas, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = window.labelling.bulk_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.scope.setCurrentIndex(2)  # the whole project
    dialog.model.setCurrentIndex(max(0, dialog.model.findData("hi-sam")))
    qtbot.waitUntil(lambda: dialog.model.findData("hi-sam") >= 0, timeout=5_000)
    dialog.model.setCurrentIndex(dialog.model.findData("hi-sam"))
    qtbot.mouseClick(dialog.use_score, Qt.MouseButton.LeftButton)
    dialog.min_score.selectAll()
    qtbot.keyClicks(dialog.min_score.lineEdit(), "0.80")
    wanted = {i for i, score in proposals.items() if score >= 0.8}
    qtbot.waitUntil(lambda: dialog.count.text() == f"{len(wanted)} annotation(s) match.", timeout=5_000)
    qtbot.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("Accept 6 annotation(s)" in n.label.text()
                                for n in window.notifications.notifications()), timeout=10_000)
    after = _statuses(scans_project, proposals)
    assert {i for i, status in after.items() if status is AnnotationStatus.ACCEPTED} == wanted
    assert all(after[i] is AnnotationStatus.PROPOSED for i in proposals if i not in wanted)

    window.activateWindow()  # back from the dialog: the window's shortcuts answer again
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: set(_statuses(scans_project, proposals).values()) == {AnnotationStatus.PROPOSED},
                    timeout=10_000)
    window.undo_stack.redo()
    qtbot.waitUntil(lambda: _statuses(scans_project, proposals) == after, timeout=10_000)
    on_page = {r.id: r.status for r in window.labelling.records() if r.id in proposals}
    qtbot.waitUntil(lambda: {r.id: r.status for r in window.labelling.records() if r.id in proposals} ==
                    {i: after[i] for i in on_page}, timeout=10_000)  # the open page shows the change


def test_the_bulk_dialog_closes_with_its_project(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    window.actions_by_name["bulk-review"].trigger()
    dialog = window.labelling.bulk_dialog
    assert dialog.isVisible()
    window.close_project()
    assert not dialog.isVisible() and window.labelling.bulk_dialog is None
