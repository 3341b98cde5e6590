"""The SAM tool with real mouse and keyboard events, on the tiny SAM of the test kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select

from engine.models.store import ModelStore
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus, SourceKind
from tests.gui.conftest import add_rectangle_mask, open_and_wait
from tests.modelkit.tiny import tiny_spec


@pytest.fixture
def sam_installed(tiny_models, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    store = ModelStore()  # the user's models folder (isolated per test)
    store.import_files(tiny_spec("sam-vit-b"), [tiny_models("sam-vit-b")])
    return store


def _sam(window):
    return window.tools["sam"].controller


def _click(qtbot, window, x: float, y: float, button=Qt.MouseButton.LeftButton,
           modifier=Qt.KeyboardModifier.NoModifier) -> None:
    canvas = window.canvas
    qtbot.mouseClick(canvas.viewport(), button, modifier, canvas.mapFromScene(QPointF(x, y)))


def _sam_annotations(window) -> list[Annotation]:
    with window.project.unit_of_work() as session:
        return list(session.scalars(select(Annotation).where(Annotation.source_model == "sam-vit-b")).all())


def test_click_shows_a_mask_and_enter_saves_it(qtbot, window, scans_project: Path, sam_installed) -> None:
    """Seconds: the tiny SAM prepares a shared page and its prompt decoder is exported to ONNX at first use."""
    open_and_wait(qtbot, window, scans_project)
    canvas_at = window.canvas.mapTo(window, window.canvas.rect().topLeft())
    with qtbot.waitSignal(_sam(window).page_ready, timeout=60_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_S)  # the tool's shortcut
    assert window.canvas.tool is _sam(window).tool and window.tools["sam"].options.isVisible()
    assert window.canvas.mapTo(window, window.canvas.rect().topLeft()) == canvas_at  # its options moved nothing
    page = _sam(window)._page
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        _click(qtbot, window, page.width * 0.4, page.height * 0.3)
    assert _sam(window).tool.points == [(pytest.approx(page.width * 0.4, abs=3),
                                         pytest.approx(page.height * 0.3, abs=3), 1)]
    assert _sam(window).tool.has_mask
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        _click(qtbot, window, page.width * 0.7, page.height * 0.8, Qt.MouseButton.RightButton)  # exclude
    assert [label for _, _, label in _sam(window).tool.points] == [1, 0]
    assert "Enter keeps this mask" in window.statusBar().currentMessage()  # issue 27, 7: how to keep it, said
    expected_index = _sam(window).segmentation.index
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(_sam_annotations(window)) == 1, timeout=20_000)
    assert "Enter keeps this mask" not in window.statusBar().currentMessage()  # and not after it is kept
    saved = _sam_annotations(window)[0]
    assert saved.source_kind == SourceKind.MODEL and saved.status == AnnotationStatus.ACCEPTED
    assert saved.rle is not None and saved.rle["size"] == [page.height, page.width]
    assert saved.creator == "Test Curator" and f'"candidate": {expected_index}' in saved.prompt
    assert not _sam(window).tool.busy  # ready for the next object
    qtbot.waitUntil(lambda: window.canvas.drawn(saved.id) is not None, timeout=5_000)
    qtbot.waitUntil(lambda: "1 drawn" in window.status.session_label.text(), timeout=5_000)  # the curator's work too
    window.undo_stack.undo()
    assert _sam_annotations(window) == []


def test_a_box_drag_and_alt_click_make_a_prompt(qtbot, window, scans_project: Path, sam_installed) -> None:
    open_and_wait(qtbot, window, scans_project)
    with qtbot.waitSignal(_sam(window).page_ready, timeout=60_000):
        window.canvas.set_tool("sam")
    canvas = window.canvas
    start, end = canvas.mapFromScene(QPointF(200, 300)), canvas.mapFromScene(QPointF(900, 1200))
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(canvas.viewport(), (start + end) / 2)
        qtbot.mouseMove(canvas.viewport(), end)
        qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    x0, y0, x1, y1 = _sam(window).tool.box
    assert abs(x0 - 200) < 5 and abs(y1 - 1200) < 5 and _sam(window).tool.points == []
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        _click(qtbot, window, 500, 700, modifier=Qt.KeyboardModifier.AltModifier)
    assert _sam(window).tool.points[0][2] == 0
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert not _sam(window).tool.busy and not _sam(window).tool.has_mask


def test_without_a_sam_model_the_tool_offers_the_models_dialog(qtbot, window, scans_project: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    open_and_wait(qtbot, window, scans_project)
    window.canvas.set_tool("sam")
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    # On a computer without a GPU the light SAM 2.1 is the one suggested.
    assert len(boxes) == 1 and "SAM 2.1 Hiera-tiny" in boxes[0].text()
    assert _sam(window).model_id == "sam2.1-hiera-tiny"
    boxes[0].reject()


def test_segment_everything_names_its_page_and_goes_back_to_it(qtbot, window, scans_project: Path,
                                                                 sam_installed, monkeypatch) -> None:
    """Seconds: segment everything post-processes every candidate mask at SAM's 1024-px frame."""
    import functools

    from engine.segmentation import automatic
    from gui.notifications import Notification

    # What is tested is the message and the way back to the page, not the grid: one batch of prompt points
    # (the default 32 x 32 grid spends minutes post-processing the tiny random model's noisy masks).
    monkeypatch.setattr(automatic, "segment_everything", functools.partial(
        automatic.segment_everything, settings=automatic.EverythingSettings(points_per_side=4)))

    open_and_wait(qtbot, window, scans_project)
    with qtbot.waitSignal(_sam(window).page_ready, timeout=60_000):
        window.canvas.set_tool("sam")
    first = window.labelling.image_id
    first_row = window.gallery.model.row_for(first)
    assert window.labelling.current_category() is not None
    window.actions_by_name["sam-everything"].trigger()
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)  # the curator moves on while SAM works
    assert window.labelling.image_id != first
    window.gallery.search.setText("no page is called this")  # and filters the gallery so the page is hidden

    def done() -> Notification:
        notes = [n for n in window.notifications.notifications() if "SAM proposed" in n.label.text()]
        assert notes
        return notes[0]

    qtbot.waitUntil(lambda: done() is not None, timeout=120_000)
    note = done()
    category = window.labelling.current_category().name
    assert first_row.display_name in note.label.text() and category in note.label.text()  # which page and what
    assert [button.text() for button in note.buttons] == ["Go to page"]
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        qtbot.mouseClick(note.buttons[0], Qt.MouseButton.LeftButton)
    assert window.labelling.image_id == first and window.gallery.search.text() == ""
    qtbot.waitUntil(lambda: not any("SAM proposed" in n.label.text() for n in window.notifications.notifications()))


def test_clicks_refine_the_selected_mask_in_place(qtbot, window, scans_project: Path, sam_installed) -> None:
    """Seconds: the tiny SAM prepares a shared page and its prompt decoder is exported to ONNX at first use."""
    target, _, page = add_rectangle_mask(scans_project, slice(300, 700), slice(200, 900))
    open_and_wait(qtbot, window, scans_project)
    if window.labelling.image_id != page.id:
        with qtbot.waitSignal(window.page_ready, timeout=30_000):
            window.gallery.reveal(page.id)
    window.labelling.select_annotations([target.id])
    before = len(window.labelling.records())
    with qtbot.waitSignal(_sam(window).page_ready, timeout=60_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    assert _sam(window).refining is not None and _sam(window).refining.id == target.id
    assert "Refining #" in window.status.currentMessage()
    qtbot.waitUntil(lambda: _sam(window)._refine_previous is not None, timeout=10_000)
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        _click(qtbot, window, 500, 500)
    assert _sam(window).segmentation.prompt.previous is not None  # the stored mask went to SAM as the prior
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _rle_of(scans_project, target.id) != target.rle, timeout=20_000)
    assert len(window.labelling.records()) == before  # the shape changed in place; nothing was added
    assert _sam(window).refining is None  # the next click starts a new object
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: _rle_of(scans_project, target.id) == target.rle, timeout=10_000)


def _rle_of(folder: Path, annotation_id: int):
    from engine.project import Project

    with Project.open(folder) as project, project.unit_of_work() as session:
        return session.get_one(Annotation, annotation_id).rle


def test_on_a_cpu_the_sam_tool_starts_with_sam2_tiny_and_saves_its_masks(qtbot, window, scans_project: Path,
                                                                        tiny_models, monkeypatch) -> None:
    """Seconds: SAM 2's encoder and decoder are exported to ONNX at first use, as on a curator's CPU."""
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    ModelStore().import_files(tiny_spec("sam2.1-hiera-tiny"), [tiny_models("sam2.1-hiera-tiny")])
    open_and_wait(qtbot, window, scans_project)
    with qtbot.waitSignal(_sam(window).page_ready, timeout=60_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    assert _sam(window).model_id == "sam2.1-hiera-tiny" and _sam(window).embedding.frame.stretch
    page = _sam(window)._page
    with qtbot.waitSignal(_sam(window).mask_shown, timeout=20_000):
        _click(qtbot, window, page.width * 0.4, page.height * 0.3)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)

    def saved() -> list[Annotation]:
        with window.project.unit_of_work() as session:
            return list(session.scalars(select(Annotation).where(
                Annotation.source_model == "sam2.1-hiera-tiny")).all())

    qtbot.waitUntil(lambda: len(saved()) == 1, timeout=20_000)
    assert saved()[0].rle["size"] == [page.height, page.width]
