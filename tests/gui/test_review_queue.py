"""Reviewing one by one with the keyboard, across three pages: A, R, N, Shift+N, E."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.annotations import Geometry, Provenance, create_annotations
from engine.categories import list_categories
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.review import ProposalFilter, review_matching
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus, SourceKind
from tests.gui.conftest import open_and_wait


@pytest.fixture
def three_pages(scans_project: Path, shared_data: Path, tmp_path: Path) -> dict[int, list[int]]:
    """Two proposals a page (the lower one second), on three pages; page id → proposal ids."""
    extra = tmp_path / "more"
    extra.mkdir()
    shutil.copy(shared_data / "manuscripts" / "dannhauer_catechismus04_1653_0585.jpg", extra)
    made: dict[int, list[int]] = {}
    with Project.open(scans_project) as project:
        import_scans(project, [extra])
        review_matching(project, ProposalFilter(), AnnotationStatus.ACCEPTED, reviewer="earlier")  # only ours wait
        category = list_categories(project)[0].id
        for page in list_images(project):
            origin = [Provenance(SourceKind.MODEL, "hi-sam", "1", "word", 0.6)] * 2
            records = create_annotations(project, image_id=page.id, category_id=category, geometries=[
                Geometry(bbox=(100, 900, 80, 30)), Geometry(bbox=(120, 200, 90, 30))], creator="model",
                provenances=origin, status=AnnotationStatus.PROPOSED)
            made[page.id] = [records[1].id, records[0].id]  # reading order: the upper one first
    return made


def list_categories_of(window) -> list[int]:
    return [category.id for category in window.labelling.categories()]


def _status(folder: Path, annotation_id: int) -> AnnotationStatus:
    with Project.open(folder) as project, project.unit_of_work() as session:
        return session.get_one(Annotation, annotation_id).status


def test_a_curator_reviews_across_pages_without_the_mouse(qtbot, window, scans_project: Path,
                                                          three_pages: dict[int, list[int]]) -> None:
    open_and_wait(qtbot, window, scans_project)
    review = window.review
    order = [i for page in window.gallery.visible_image_ids() for i in three_pages[page]]
    before = len(review.items)
    hiding = replace(window.canvas.layers, statuses=frozenset({"accepted"}),
                     hidden_categories=frozenset({list_categories_of(window)[0]}))
    window.canvas.set_layers(hiding)  # the curator had hidden proposals and a category
    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    queued = [item.annotation_id for item in review.items]
    assert before == 0 and queued == order and len(order) == 6
    first = review.items[0]
    assert window.labelling.image_id == first.image_id and window.labelling.selected() == [first.annotation_id]
    qtbot.waitUntil(lambda: window.canvas.drawn(first.annotation_id) is not None, timeout=10_000)
    assert window.canvas.drawn(first.annotation_id).visible  # lifted for the review
    assert window.canvas.annotation_item(first.annotation_id).isSelected()  # with its handles
    assert window.canvas.zoom() > 0.3  # zoomed to the proposal, not the page at fit
    total = len(queued)
    assert window.status.review_label.text() == f"Review: 0 of {total} proposals reviewed"
    window.status.showMessage("a passing message")  # hides ordinary status widgets, never the count
    assert window.status.review_label.isVisible()

    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert _status(scans_project, queued[0]) is AnnotationStatus.ACCEPTED
    assert window.labelling.selected() == [queued[1]]
    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_R)  # rejected; the next one is on the next page
    assert _status(scans_project, queued[1]) is AnnotationStatus.REJECTED
    assert window.labelling.image_id == review.items[2].image_id != first.image_id
    qtbot.waitUntil(lambda: window.labelling.selected() == [queued[2]], timeout=10_000)
    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # skipped
    assert review.items[review.position].annotation_id == queued[3]
    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)  # and back
    qtbot.waitUntil(lambda: window.labelling.selected() == [queued[2]], timeout=10_000)
    zoom = window.canvas.zoom()
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.canvas.tool.name == "select" and window.canvas.zoom() > zoom  # closer, ready to reshape
    with qtbot.waitSignal(review.moved, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert _status(scans_project, queued[2]) is AnnotationStatus.ACCEPTED
    assert _status(scans_project, queued[3]) is AnnotationStatus.PROPOSED  # skipped, still waiting
    assert window.status.review_label.text() == f"Review: 3 of {total} proposals reviewed"
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # ends the review
    assert not review.active and not window.status.review_label.isVisible()
    assert window.canvas.layers == hiding  # and put back after it
