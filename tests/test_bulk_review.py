"""Bulk review: a filter selects annotations across pages; changes are exact, cancellable and undoable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image as PILImage

from engine.annotations import Geometry, Provenance, annotations_of, create_annotations
from engine.categories import add_category
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken
from engine.review import (ProposalFilter, count_matching, delete_matching, recategorise_matching, redo_change,
                           review_matching, undo_change)
from engine.store.types import AnnotationStatus, SourceKind


@pytest.fixture
def pages(project, tmp_path: Path) -> list[int]:
    scans = tmp_path / "scans"
    scans.mkdir()
    for number in range(3):
        PILImage.new("RGB", (400, 300), (200 + number * 10, 190, 180)).save(scans / f"page_{number}.png")
    import_scans(project, [scans])
    return [row.id for row in list_images(project)]


@pytest.fixture
def project(any_project):
    """Store tests run on both databases: SQLite, then PostgreSQL (``tests/team_fixtures.py``)."""
    return any_project


def _propose(project, image_id: int, category: int, scores: list[float], model: str = "hi-sam",
             prompt: str = "word", run: int | None = None, status=AnnotationStatus.PROPOSED) -> list[int]:
    shapes = [Geometry(bbox=(10 + 5 * i, 10, 20, 10)) for i in range(len(scores))]
    origin = [Provenance(SourceKind.MODEL, model, "1", prompt, score, run) for score in scores]
    return [r.id for r in create_annotations(project, image_id=image_id, category_id=category, geometries=shapes,
                                             creator="model", provenances=origin, status=status)]


def _states(project, image_ids: list[int]) -> dict[int, tuple]:
    return {r.id: (r.status, r.category_id, r.reviewed_by) for page in image_ids for r in annotations_of(project, page)}


def test_accept_by_score_touches_exactly_the_matching_proposals_and_undoes(project, pages) -> None:
    word, line = add_category(project, "Word").id, add_category(project, "Line").id
    high = _propose(project, pages[0], word, [0.95, 0.81, 0.8])
    low = _propose(project, pages[0], word, [0.79, 0.2])
    other_model = _propose(project, pages[1], word, [0.99], model="grounding-dino")
    other_category = _propose(project, pages[2], line, [0.9])
    already_rejected = _propose(project, pages[2], word, [0.99], status=AnnotationStatus.REJECTED)
    before = _states(project, pages)
    selection = ProposalFilter(min_score=0.8, source_model="hi-sam", category_ids=frozenset({word}))
    assert count_matching(project, selection) == 3
    steps = []
    change = review_matching(project, selection, AnnotationStatus.ACCEPTED, reviewer="Ada", progress=steps.append)
    assert sorted(change.ids) == sorted(high) and change.image_ids == {pages[0]}
    assert steps[-1].done == steps[-1].total == 3
    after = _states(project, pages)
    assert {i for i in after if after[i] != before[i]} == set(high)
    assert all(after[i][0] is AnnotationStatus.ACCEPTED and after[i][2] == "Ada" for i in high)
    assert all(after[i] == before[i] for i in low + other_model + other_category + already_rejected)
    undo_change(project, change)
    assert _states(project, pages) == before
    redo_change(project, change)
    assert _states(project, pages) == after


def test_the_scope_limits_a_change_to_the_chosen_pages(project, pages) -> None:
    word = add_category(project, "Word").id
    on_first = _propose(project, pages[0], word, [0.5, 0.6])
    _propose(project, pages[1], word, [0.5])
    change = review_matching(project, ProposalFilter(image_ids=frozenset({pages[0]})), AnnotationStatus.REJECTED,
                             reviewer="Ada")
    assert sorted(change.ids) == on_first
    assert [r.status for r in annotations_of(project, pages[1])] == [AnnotationStatus.PROPOSED]


def test_recategorise_and_delete_undo_to_the_exact_previous_state(project, pages) -> None:
    word, line, para = (add_category(project, name).id for name in ("Word", "Line", "Paragraph"))
    _propose(project, pages[0], word, [0.9, 0.4])
    _propose(project, pages[1], line, [0.9])
    _propose(project, pages[1], para, [0.3], prompt="paragraph")
    # Everything comes back but the time and version of the last change (undoing is a change too).
    def everything() -> dict:
        return {r.id: replace(r, updated_at=None, version=0) for page in pages for r in annotations_of(project, page)}

    def versions() -> dict:
        return {r.id: r.version for page in pages for r in annotations_of(project, page)}

    before = everything()
    change = recategorise_matching(project, ProposalFilter(prompt="word"), para)
    assert change.count == 3
    assert {r.category_id for page in pages for r in annotations_of(project, page)} == {para}
    undo_change(project, change)
    assert {r.id: r.category_id for page in pages for r in annotations_of(project, page)} == \
        {i: r.category_id for i, r in before.items()}
    assert sorted(versions().values()) == [1, 3, 3, 3]  # the change and its undo each raised the version
    removed = delete_matching(project, ProposalFilter(max_score=0.5))
    assert removed.count == 2 and len([r for p in pages for r in annotations_of(project, p)]) == 2
    undo_change(project, removed)
    assert everything() == before  # ids, shapes, provenance, review


def test_a_cancelled_bulk_change_changes_nothing(project, pages, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.review

    word = add_category(project, "Word").id
    _propose(project, pages[0], word, [0.9] * 30)
    before = _states(project, pages)
    monkeypatch.setattr(engine.review, "SLICE", 10)
    cancel = CancelToken()

    def progress(step) -> None:
        if step.done >= 20:
            cancel.cancel()  # after two slices were written, inside the transaction

    with pytest.raises(JobCancelled):
        review_matching(project, ProposalFilter(), AnnotationStatus.ACCEPTED, reviewer="Ada", progress=progress,
                        cancel=cancel)
    assert _states(project, pages) == before


def test_bulk_changes_are_refused_on_a_read_only_project(project, pages) -> None:
    from engine.errors import ProjectReadOnlyError
    from engine.project import Project

    add_category(project, "Word")
    folder = project.folder
    project.close()
    with Project.open(folder, read_only=True) as reader, pytest.raises(ProjectReadOnlyError):
        review_matching(reader, ProposalFilter(), AnnotationStatus.ACCEPTED, reviewer="Ada")


def test_filter_choices_list_what_occurs_in_the_project(project, pages) -> None:
    from engine.models.runs import recorded_run
    from engine.review import filter_choices

    word = add_category(project, "Word").id
    with recorded_run(project, "hi-sam", device="cpu", parameters={}) as run:
        _propose(project, pages[0], word, [0.9, 0.5], run=run.id)
    with recorded_run(project, "grounding-dino", device="cpu", parameters={}) as done:
        _propose(project, pages[1], word, [0.9], model="grounding-dino", prompt="coat of arms", run=done.id,
                 status=AnnotationStatus.ACCEPTED)
    choices = filter_choices(project)
    assert choices.source_models == ["grounding-dino", "hi-sam"]
    assert choices.prompts == ["coat of arms", "word"]
    assert [(r.id, r.model_id, r.proposals) for r in choices.runs] == [(run.id, "hi-sam", 2)]  # runs with proposals


def test_the_review_queue_walks_pages_in_gallery_order_and_each_page_in_reading_order(project, pages) -> None:
    from engine.review import proposal_queue

    word = add_category(project, "Word").id
    origin = Provenance(SourceKind.MODEL, "hi-sam", "1", "word", 0.5)

    def at(image_id: int, x: float, y: float) -> int:
        return create_annotations(project, image_id=image_id, category_id=word, geometries=[
            Geometry(bbox=(x, y, 20, 8))], creator="m", provenances=[origin], status=AnnotationStatus.PROPOSED)[0].id

    second_line_left, first_line_right = at(pages[0], 10, 100), at(pages[0], 200, 12)
    first_line_left = at(pages[0], 15, 14)  # 2 px lower than its neighbour: the same line
    other_page = at(pages[1], 5, 5)
    at(pages[2], 5, 5)
    create_annotations(project, image_id=pages[0], category_id=word, geometries=[Geometry(bbox=(0, 0, 5, 5))],
                       creator="m", provenances=[origin], status=AnnotationStatus.ACCEPTED)  # not a proposal
    queue = proposal_queue(project, [pages[1], pages[0]])  # the gallery shows page 1 first; page 2 is filtered out
    assert [item.annotation_id for item in queue] == [other_page, first_line_left, first_line_right,
                                                      second_line_left]
    assert queue[1].image_id == pages[0] and queue[1].bbox == (15, 14, 20, 8)
