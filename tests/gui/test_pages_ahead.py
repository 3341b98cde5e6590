"""Stepping to the next page shows its shapes at once (read ahead), and never shapes older than an edit."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from engine.annotations import Geometry, Provenance, create_annotations
from engine.categories import list_categories
from engine.inventory import list_images
from engine.project import Project
from engine.review import ProposalFilter, review_matching
from engine.store.types import AnnotationStatus, SourceKind
from tests.gui.conftest import open_and_wait


def _propose_on_every_page(folder: Path) -> None:
    with Project.open(folder) as project:
        category = list_categories(project)[0].id
        for page in list_images(project):
            create_annotations(project, image_id=page.id, category_id=category,
                               geometries=[Geometry(bbox=(10 + 30 * i, 40, 20, 10)) for i in range(5)],
                               creator="model", status=AnnotationStatus.PROPOSED,
                               provenances=[Provenance(SourceKind.MODEL, "hi-sam", "1", "word", 0.7)] * 5)


def test_the_next_page_is_read_ahead_and_edits_drop_what_was_read(qtbot, window, scans_project: Path) -> None:
    _propose_on_every_page(scans_project)
    open_and_wait(qtbot, window, scans_project)
    order = window.gallery.visible_image_ids()
    if window.labelling.image_id != order[0]:
        with qtbot.waitSignal(window.page_ready, timeout=30_000):
            window.gallery.select_image(order[0])
    qtbot.waitUntil(lambda: window.labelling.pages_ahead.holds(order[1]), timeout=10_000)  # read while on page 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    shown = window.labelling.records()  # at once: no waiting for a read
    assert window.labelling.image_id == order[1] and len(shown) >= 5
    assert window.canvas.shape_count() == sum(1 for r in shown if r.status is not AnnotationStatus.REJECTED)

    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: window.labelling.pages_ahead.holds(order[1]), timeout=10_000)
    with Project.open(scans_project) as project:  # what a bulk change does, then tells the window
        review_matching(project, ProposalFilter(), AnnotationStatus.REJECTED, reviewer="Ada")
    window.labelling.ctx.events.annotations_changed.emit(-1)
    assert not window.labelling.pages_ahead.holds(order[1])  # dropped: it was read before the change
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: bool(window.labelling.records()), timeout=10_000)
    assert all(r.status is not AnnotationStatus.PROPOSED for r in window.labelling.records())  # never stale
