"""Brush, eraser and "convert to polygon" from the window, with real mouse and keys; all undoable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from engine.coco.geometry import rasterise
from engine.project import Project
from engine.store.schema import Annotation
from tests.gui.conftest import add_rectangle_mask, open_and_wait


@pytest.fixture
def masked(scans_project: Path) -> tuple[int, np.ndarray, tuple[int, int]]:
    """A rectangular SAM-like mask on the first page: its id, its pixels and the page size (w, h)."""
    record, mask, page = add_rectangle_mask(scans_project, slice(400, 600), slice(300, 700))
    return record.id, mask, (page.width, page.height)


def _stored(folder: Path, annotation_id: int) -> Annotation:
    with Project.open(folder) as project, project.unit_of_work() as session:
        row = session.get_one(Annotation, annotation_id)
        session.expunge(row)
        return row


def _drag(qtbot, window, points: list[tuple[float, float]]) -> None:
    viewport, canvas = window.canvas.viewport(), window.canvas
    at = [canvas.mapFromScene(QPointF(x, y)) for x, y in points]
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=at[0])
    for point in at[1:]:
        qtbot.mouseMove(viewport, point)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=at[-1])


def test_brush_and_eraser_change_the_stored_mask_where_painted(qtbot, window, scans_project: Path, masked) -> None:
    annotation_id, before, (width, height) = masked
    open_and_wait(qtbot, window, scans_project)
    if window.labelling.image_id != _stored(scans_project, annotation_id).image_id:
        with qtbot.waitSignal(window.page_ready, timeout=30_000):
            window.gallery.reveal(_stored(scans_project, annotation_id).image_id)
    window.labelling.select_annotations([annotation_id])
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)  # the brush
    assert window.canvas.tool.name == "brush"
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)  # larger: 8 → 15.6 px
    radius = window.canvas.brush_size.radius
    assert radius == pytest.approx(8 * 1.25 ** 3)
    window.canvas.centerOn(QPointF(800, 500))
    _drag(qtbot, window, [(690, 500), (750, 500), (800, 500)])  # out through the mask's right edge at x = 700
    qtbot.waitUntil(lambda: _stored(scans_project, annotation_id).area > before.sum(), timeout=10_000)
    painted = rasterise(None, _stored(scans_project, annotation_id).rle, height, width)
    added = (painted == 1) & (before == 0)
    ys, xs = np.nonzero(added)
    assert not ((painted == 0) & (before == 1)).any()
    slack = 1 + 1 / window.canvas.zoom()  # a mouse event lands on a whole screen pixel: that many page pixels
    assert abs(xs.max() - (800 + radius)) <= slack and abs(ys.min() - (500 - radius)) <= slack
    assert added.sum() == pytest.approx(100 * 2 * radius + np.pi * radius ** 2 / 2, rel=0.25)  # the stroke, no more

    qtbot.keyClick(window.canvas, Qt.Key.Key_X)  # the eraser, same size
    _drag(qtbot, window, [(500, 380), (500, 500), (500, 620)])  # a cut down through the mask
    qtbot.waitUntil(lambda: _stored(scans_project, annotation_id).area < painted.sum(), timeout=10_000)
    erased = rasterise(None, _stored(scans_project, annotation_id).rle, height, width)
    gone = (painted == 1) & (erased == 0)
    assert not ((erased == 1) & (painted == 0)).any()
    assert set(np.unique(np.nonzero(gone)[1])) <= set(range(int(500 - radius - slack), int(500 + radius + slack + 1)))
    assert gone.sum() == pytest.approx(200 * 2 * radius, rel=0.15)  # the full height of the mask, brush-wide

    window.actions_by_name["to-polygon"].trigger()
    qtbot.waitUntil(lambda: _stored(scans_project, annotation_id).rle is None, timeout=10_000)
    outlined = _stored(scans_project, annotation_id)
    assert len(outlined.polygons) == 2  # the cut made two parts
    redrawn = rasterise(outlined.polygons, None, height, width)
    assert (redrawn != erased).sum() < 0.01 * erased.sum()  # the outline follows the pixels (curves within ½ px)
    assert window.canvas.annotation_item(annotation_id).editable  # its vertices can be dragged now

    for expected in (erased, painted, before):
        window.undo_stack.undo()
        qtbot.waitUntil(lambda expected=expected: _stored(scans_project, annotation_id).rle is not None and
                        np.array_equal(rasterise(None, _stored(scans_project, annotation_id).rle, height, width),
                                       expected), timeout=10_000)
