"""A curator's session with real mouse and keyboard events: draw, categorise, undo, review, reopen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from sqlalchemy import select

from engine.project import Project
from engine.store.schema import Annotation, Category, Image, LabelSession
from engine.store.types import AnnotationStatus
from tests.gui.conftest import CURATOR, open_and_wait


def _view_point(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def _annotations(folder: Path) -> list[Annotation]:
    with Project.open(folder) as project, project.unit_of_work() as session:
        return list(session.scalars(select(Annotation).order_by(Annotation.id)))


def _category_id(folder: Path, name: str) -> int:
    with Project.open(folder) as project, project.unit_of_work() as session:
        return session.scalars(select(Category.id).where(Category.name == name)).one()


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.canvas, key, modifier)


def _drag(qtbot, window, start: QPoint, end: QPoint) -> None:
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    middle = QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2)
    qtbot.mouseMove(viewport, middle)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


@pytest.fixture
def labelling(qtbot, window, scans_project: Path):
    open_and_wait(qtbot, window, scans_project)
    window.activateWindow()
    window.canvas.setFocus()
    window.categories.set_current(_category_id(scans_project, "Ornament"))
    return window


def test_box_and_polygon_drawn_with_the_mouse_are_saved_at_once(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    before = len(_annotations(scans_project))
    _key(qtbot, window, Qt.Key.Key_B)
    assert window.canvas.tool.name == "box"
    start, end = _view_point(window, 300, 1000), _view_point(window, 700, 1300)
    _drag(qtbot, window, start, end)
    rows = _annotations(scans_project)
    assert len(rows) == before + 1
    box = rows[-1]
    scene_start = window.canvas.mapToScene(start)
    scene_end = window.canvas.mapToScene(end)
    assert box.polygons is None and box.rle is None
    assert box.bbox_x == pytest.approx(scene_start.x(), abs=0.01)
    assert box.bbox_w == pytest.approx(scene_end.x() - scene_start.x(), abs=0.01)
    assert box.creator == CURATOR and box.status is AnnotationStatus.ACCEPTED
    assert box.category_id == _category_id(scans_project, "Ornament")

    _key(qtbot, window, Qt.Key.Key_P)
    corners = [(900, 1500), (1300, 1500), (1300, 1900), (950, 1950)]
    for x, y in corners:
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view_point(window, x, y))
    _key(qtbot, window, Qt.Key.Key_Return)
    polygon = _annotations(scans_project)[-1]
    assert len(_annotations(scans_project)) == before + 2
    ring = polygon.polygons[0]["exterior"]
    assert len(ring) == 8
    assert ring[0] == pytest.approx(window.canvas.mapToScene(_view_point(window, 900, 1500)).x(), abs=0.01)
    assert polygon.area > 0.8 * 400 * 400  # roughly the quadrilateral drawn


def test_polygon_closes_by_clicking_its_first_point(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    before = len(_annotations(scans_project))
    _key(qtbot, window, Qt.Key.Key_P)
    points = [(400, 2000), (800, 2000), (600, 2300), (400, 2000)]
    for x, y in points:
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view_point(window, x, y))
    rows = _annotations(scans_project)
    assert len(rows) == before + 1
    assert len(rows[-1].polygons[0]["exterior"]) == 6  # the closing click adds no point


def test_category_hotkey_undo_and_redo(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    _key(qtbot, window, Qt.Key.Key_B)
    _drag(qtbot, window, _view_point(window, 200, 2500), _view_point(window, 500, 2700))
    created = _annotations(scans_project)[-1]
    assert window.canvas.selected_ids() == [created.id]
    _key(qtbot, window, Qt.Key.Key_2)  # hotkey 2: the second category
    second = window.categories.by_hotkey(2)
    assert _annotations(scans_project)[-1].category_id == second.id
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _annotations(scans_project)[-1].category_id == created.category_id
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert created.id not in [a.id for a in _annotations(scans_project)]
    _key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    _key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    restored = _annotations(scans_project)[-1]
    assert (restored.id, restored.category_id) == (created.id, second.id)


def test_delete_and_undo_restore_the_same_annotation(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    target = _annotations(scans_project)[0]
    window.canvas.select_annotations([target.id])
    _key(qtbot, window, Qt.Key.Key_Delete)
    assert target.id not in [a.id for a in _annotations(scans_project)]
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    back = next(a for a in _annotations(scans_project) if a.id == target.id)
    assert (back.bbox_x, back.polygons, back.area, back.creator) == (
        target.bbox_x, target.polygons, target.area, target.creator)


def test_review_proposals_with_the_keyboard(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    proposal = next(a for a in _annotations(scans_project) if a.status is AnnotationStatus.PROPOSED)
    window.canvas.select_annotations([proposal.id])
    _key(qtbot, window, Qt.Key.Key_A)
    accepted = next(a for a in _annotations(scans_project) if a.id == proposal.id)
    assert accepted.status is AnnotationStatus.ACCEPTED and accepted.reviewed_by == CURATOR
    assert accepted.reviewed_session_id is not None
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert next(a for a in _annotations(scans_project) if a.id == proposal.id).status is AnnotationStatus.PROPOSED
    window.canvas.select_annotations([proposal.id])
    assert "proposed" in window.status.currentMessage()
    _key(qtbot, window, Qt.Key.Key_R)
    assert next(a for a in _annotations(scans_project) if a.id == proposal.id).status is AnnotationStatus.REJECTED
    assert "rejected" in window.status.currentMessage() and "proposed" not in window.status.currentMessage()
    assert not window.canvas.drawn(proposal.id).visible  # rejected shapes leave the page (a layer)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert all(a.status is AnnotationStatus.ACCEPTED for a in _annotations(scans_project))
    qtbot.waitUntil(lambda: "1 accepted" in window.status.session_label.text(), timeout=5_000)  # counted in a job


def test_dragging_a_vertex_reshapes_and_undo_restores(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    _key(qtbot, window, Qt.Key.Key_P)
    for x, y in [(300, 300), (700, 300), (700, 700), (300, 700)]:
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view_point(window, x, y))
    _key(qtbot, window, Qt.Key.Key_Return)
    _key(qtbot, window, Qt.Key.Key_V)
    shape = _annotations(scans_project)[-1]
    window.canvas.select_annotations([shape.id])
    first = shape.polygons[0]["exterior"][:2]
    _drag(qtbot, window, _view_point(window, *first), _view_point(window, 200, 200))
    moved = next(a for a in _annotations(scans_project) if a.id == shape.id)
    new_first = moved.polygons[0]["exterior"][:2]
    expected = window.canvas.mapToScene(_view_point(window, 200, 200))
    assert new_first == pytest.approx([expected.x(), expected.y()], abs=0.01)
    assert moved.area > shape.area
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert next(a for a in _annotations(scans_project) if a.id == shape.id).polygons == shape.polygons


def test_metadata_typed_in_is_saved_and_undoable(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    editor = window.metadata.fields["shelfmark"]
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClicks(editor, "Cod. Guelf. 12.3 Aug. 2°")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    image_id = window.labelling.image_id
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        assert session.get(Image, image_id).shelfmark == "Cod. Guelf. 12.3 Aug. 2°"
    window.canvas.setFocus()
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        assert session.get(Image, image_id).shelfmark != "Cod. Guelf. 12.3 Aug. 2°"


def test_everything_is_there_after_reopening(qtbot, window, scans_project: Path) -> None:
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    open_and_wait(qtbot, window, scans_project)
    window.canvas.setFocus()
    window.categories.set_current(_category_id(scans_project, "Heading"))
    _key(qtbot, window, Qt.Key.Key_B)
    _drag(qtbot, window, _view_point(window, 100, 100), _view_point(window, 400, 300))
    drawn = _annotations(scans_project)[-1]
    window.close()
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        sessions = session.scalars(select(LabelSession)).all()
    assert sessions[-1].ended_at is not None and sessions[-1].curator == CURATOR

    reopened = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(reopened)
    reopened.show()
    open_and_wait(qtbot, reopened, scans_project)
    shown = reopened.canvas.drawn(drawn.id)
    assert shown is not None and shown.visible
    outline = shown.scene_rect
    assert (outline.x(), outline.y(), outline.width(), outline.height()) == pytest.approx(
        (drawn.bbox_x, drawn.bbox_y, drawn.bbox_w, drawn.bbox_h))
    assert reopened.categories.current_category_id() == _category_id(scans_project, "Heading")
    reopened.close()


def test_switching_pages_shows_each_page_with_its_own_annotations(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    first = window.labelling.image_id
    first_ids = sorted(a.id for a in _annotations(scans_project))
    assert sorted(i for i in first_ids if window.canvas.drawn(i)) == first_ids
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        _key(qtbot, window, Qt.Key.Key_PageDown)
    assert window.labelling.image_id != first
    assert window.metadata.file_label.text().endswith("kant_aufklaerung_1784_0017.tif")
    assert window.annotations.row_count() == 0
    assert all(window.canvas.drawn(i) is None for i in first_ids)
    assert window.canvas.page.has_full_resolution
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        _key(qtbot, window, Qt.Key.Key_PageUp)
    assert window.labelling.image_id == first
    assert window.annotations.row_count() == len(first_ids)
    assert window.canvas.page.has_full_resolution


def test_the_project_reopens_on_the_last_page_viewed(qtbot, scans_project: Path) -> None:
    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from tests.gui.conftest import open_and_wait

    first = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(first)
    open_and_wait(qtbot, first, scans_project)
    pages = first.gallery.visible_image_ids()
    assert first.labelling.image_id == pages[0]
    with qtbot.waitSignal(first.page_ready, timeout=30_000):
        qtbot.keyClick(first.gallery.view, Qt.Key.Key_End)
    assert first.labelling.image_id == pages[-1]
    first.close()
    again = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(again)
    open_and_wait(qtbot, again, scans_project)
    assert again.labelling.image_id == pages[-1]
    again.close()


def _uses(window) -> dict[int, int]:
    tree = window.categories.tree
    found = {}
    for index in range(tree.topLevelItemCount()):
        stack = [tree.topLevelItem(index)]
        while stack:
            item = stack.pop()
            found[item.data(0, Qt.ItemDataRole.UserRole)] = int(item.text(1))
            stack += [item.child(k) for k in range(item.childCount())]
    return found


def _stored_uses(folder: Path) -> dict[int, int]:
    with Project.open(folder) as project:
        from engine.categories import list_categories

        return {record.id: record.annotation_count for record in list_categories(project)}


def test_category_uses_follow_each_edit_counting_only_what_it_touched(qtbot, labelling, scans_project: Path) -> None:
    window = labelling
    tree_item = window.categories.tree.topLevelItem(0)
    target = _annotations(scans_project)[0]
    window.canvas.select_annotations([target.id])
    second = window.categories.by_hotkey(2)
    assert second.id != target.category_id
    _key(qtbot, window, Qt.Key.Key_2)
    qtbot.waitUntil(lambda: _uses(window) == _stored_uses(scans_project), timeout=10_000)
    assert _uses(window)[second.id] == _stored_uses(scans_project)[second.id] > 0
    _key(qtbot, window, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: _uses(window) == _stored_uses(scans_project), timeout=10_000)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _uses(window) == _stored_uses(scans_project), timeout=10_000)
    assert _annotations(scans_project)[0].category_id == target.category_id
    # Counted in place: the tree was not rebuilt (its items, selection and scroll stay).
    assert window.categories.tree.topLevelItem(0) is tree_item
    assert {c.id: c.annotation_count for c in window.labelling.categories()} == _stored_uses(scans_project)
