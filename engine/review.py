"""Bulk review: accept, reject, recategorise or delete every annotation a filter selects, undoably.

A filter names proposals by score range, category, source model, model run and prompt, within a scope
(some pages, or the whole project). A bulk change runs in one write transaction, in slices of ids so
that progress moves and a cancel takes effect between slices (the transaction then rolls back: nothing
changes). It returns a ``BulkChange`` that remembers exactly which annotations changed and what they
were, so undo restores them (and redo re-applies to the same annotations, not to whatever the filter
would select by then).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, update

from engine.annotations import ANNOTATION_FIELDS, AnnotationRecord, record_of
from engine.errors import StaleEditError
from engine.jobs import CancelToken, ProgressCallback, report
from engine.project import Project
from engine.row_versions import stale_message
from engine.store.schema import Annotation, ModelRun
from engine.store.types import AnnotationStatus, utc_now

SLICE = 5_000  # ids per UPDATE: progress and cancel every few tens of milliseconds


@dataclass(frozen=True)
class ProposalFilter:
    """Which annotations a bulk change acts on; a field left ``None`` does not filter."""

    status: AnnotationStatus | None = AnnotationStatus.PROPOSED
    image_ids: frozenset[int] | None = None  # the scope: a page, the gallery's pages; None: the project
    min_score: float | None = None
    max_score: float | None = None
    category_ids: frozenset[int] | None = None
    source_model: str | None = None
    model_run_id: int | None = None
    prompt: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        wanted: list[ColumnElement[bool]] = []
        if self.status is not None:
            wanted.append(Annotation.status == self.status)
        if self.image_ids is not None:
            wanted.append(Annotation.image_id.in_(sorted(self.image_ids)))
        if self.min_score is not None:
            wanted.append(Annotation.score >= self.min_score)
        if self.max_score is not None:
            wanted.append(Annotation.score <= self.max_score)
        if self.category_ids is not None:
            wanted.append(Annotation.category_id.in_(sorted(self.category_ids)))
        if self.source_model is not None:
            wanted.append(Annotation.source_model == self.source_model)
        if self.model_run_id is not None:
            wanted.append(Annotation.model_run_id == self.model_run_id)
        if self.prompt is not None:
            wanted.append(Annotation.prompt == self.prompt)
        return wanted


@dataclass
class BulkChange:
    """What a bulk change did, enough to undo and redo it exactly."""

    description: str
    ids: list[int]
    image_ids: set[int]
    new_values: dict[str, Any]  # the columns set (empty for a deletion)
    old_values: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)  # (columns, ids) groups
    deleted: list[AnnotationRecord] = field(default_factory=list)
    # Each row's version as this change (or its last undo or redo) left it: an undo or redo of rows someone has
    # changed since is refused, not applied over their work.
    versions: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.ids)


_REVIEW_COLUMNS = ("status", "reviewed_by", "reviewed_at", "reviewed_session_id")
MAX_CHOICES = 200  # prompts offered in a filter's list; more are typed


@dataclass(frozen=True)
class RunChoice:
    id: int
    model_id: str
    started: str  # local-free ISO time, to the minute
    proposals: int  # still proposed


@dataclass(frozen=True)
class FilterChoices:
    """What a bulk-review filter can choose from in this project (what actually occurs)."""

    source_models: list[str]
    prompts: list[str]
    runs: list[RunChoice]


def filter_choices(project: Project) -> FilterChoices:
    with project.unit_of_work() as session:
        models = session.scalars(select(Annotation.source_model).where(Annotation.source_model != "")
                                 .distinct().order_by(Annotation.source_model)).all()
        prompts = session.scalars(select(Annotation.prompt).where(Annotation.prompt != "").distinct()
                                  .order_by(Annotation.prompt).limit(MAX_CHOICES)).all()
        counts = session.execute(select(Annotation.model_run_id, func.count(Annotation.id))
                                 .where(Annotation.model_run_id.is_not(None),
                                        Annotation.status == AnnotationStatus.PROPOSED)
                                 .group_by(Annotation.model_run_id)).all()
        proposed = {run_id: count for run_id, count in counts}
        runs = session.scalars(select(ModelRun).where(ModelRun.id.in_(list(proposed)))
                               .order_by(ModelRun.id.desc())).all()
        return FilterChoices(list(models), list(prompts),
                             [RunChoice(run.id, run.model_id, run.started_at.isoformat(timespec="minutes")[:16]
                                        .replace("T", " "), proposed[run.id]) for run in runs])


def count_matching(project: Project, selection: ProposalFilter) -> int:
    with project.unit_of_work() as session:
        return int(session.scalar(select(func.count(Annotation.id)).where(*selection.conditions())) or 0)


def review_matching(project: Project, selection: ProposalFilter, status: AnnotationStatus, *, reviewer: str,
                    session_id: int | None = None, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> BulkChange:
    """Accept or reject every annotation ``selection`` matches."""
    verb = "Accept" if status is AnnotationStatus.ACCEPTED else "Reject"
    values = {"status": status, "reviewed_by": reviewer, "reviewed_at": utc_now(), "reviewed_session_id": session_id}
    return _change(project, selection, verb, values, _REVIEW_COLUMNS, progress, cancel)


def recategorise_matching(project: Project, selection: ProposalFilter, category_id: int, *,
                          progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None) -> BulkChange:
    return _change(project, selection, "Recategorise", {"category_id": category_id}, ("category_id",),
                   progress, cancel)


def delete_matching(project: Project, selection: ProposalFilter, *, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> BulkChange:
    with project.writing(cancel) as session:
        rows = session.scalars(select(Annotation).where(*selection.conditions()).order_by(Annotation.id)).all()
        records = [record_of(row) for row in rows]
        ids = [record.id for record in records]
        for start in range(0, len(ids), SLICE):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = ids[start:start + SLICE]
            session.execute(delete(Annotation).where(Annotation.id.in_(chunk)))
            report(progress, min(start + SLICE, len(ids)), len(ids), "annotations deleted")
        session.expunge_all()
    return BulkChange(f"Delete {len(ids):,} annotation(s)", ids, {r.image_id for r in records}, {},
                      versions={r.id: r.version for r in records},
                      deleted=records)


def _check_left(session: Any, change: BulkChange, verb: str) -> None:
    """Refuse ``verb`` where rows of ``change`` are no longer at the versions it left (someone changed them)."""
    if not change.versions:
        return
    changed: list[Any] = []
    ids = list(change.versions)
    for start in range(0, len(ids), SLICE):
        rows = session.execute(select(Annotation.id, Annotation.version, Annotation.updated_by, Annotation.updated_at,
                                      Annotation.reviewed_by, Annotation.creator)
                               .where(Annotation.id.in_(ids[start:start + SLICE])).with_for_update()).all()
        changed += [row for row in rows if row.version != change.versions[row.id]]
    if changed:
        raise StaleEditError(stale_message(changed, []).replace("Not saved:", f"Cannot {verb}:", 1),
                             [row.id for row in changed])


def _raise_left(change: BulkChange) -> None:
    change.versions = {annotation_id: version + 1 for annotation_id, version in change.versions.items()}


def undo_change(project: Project, change: BulkChange, *, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> None:
    with project.writing(cancel) as session:
        if not change.deleted:
            _check_left(session, change, "undo")
        if change.deleted:
            for start in range(0, len(change.deleted), SLICE):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                chunk = change.deleted[start:start + SLICE]
                session.execute(Annotation.__table__.insert(),
                                [{name: getattr(record, name) for name in ANNOTATION_FIELDS} for record in chunk])
                report(progress, min(start + SLICE, change.count), change.count, "annotations restored")
            return
        done = 0
        for values, ids in change.old_values:
            done = _update_slices(session, ids, values, progress, cancel, done, change.count)
    _raise_left(change)


def redo_change(project: Project, change: BulkChange, *, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> None:
    with project.writing(cancel) as session:
        if change.deleted:
            _check_left(session, change, "redo")
            for start in range(0, change.count, SLICE):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                session.execute(delete(Annotation).where(Annotation.id.in_(change.ids[start:start + SLICE])))
                report(progress, min(start + SLICE, change.count), change.count, "annotations deleted")
            return
        _check_left(session, change, "redo")
        _update_slices(session, change.ids, change.new_values, progress, cancel, 0, change.count)
    _raise_left(change)


def _change(project: Project, selection: ProposalFilter, verb: str, values: dict[str, Any],
            remembered: tuple[str, ...], progress: ProgressCallback | None,
            cancel: CancelToken | None) -> BulkChange:
    columns = [getattr(Annotation, name) for name in remembered]
    with project.writing(cancel) as session:
        rows = session.execute(select(Annotation.id, Annotation.image_id, Annotation.version, *columns)
                               .where(*selection.conditions()).order_by(Annotation.id)).all()
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for row in rows:
            groups[tuple(row[3:])].append(row[0])
        ids = [row[0] for row in rows]
        _update_slices(session, ids, values, progress, cancel, 0, len(ids))
    old = [(dict(zip(remembered, key, strict=True)), group) for key, group in groups.items()]
    return BulkChange(f"{verb} {len(ids):,} annotation(s)", ids, {row[1] for row in rows}, values, old,
                      versions={row[0]: row[2] + 1 for row in rows})


def _update_slices(session: Any, ids: list[int], values: dict[str, Any], progress: ProgressCallback | None,
                   cancel: CancelToken | None, done: int, total: int) -> int:
    stamped = {**values, "updated_at": utc_now(), "version": Annotation.version + 1}
    for start in range(0, len(ids), SLICE):
        if cancel is not None:
            cancel.raise_if_cancelled()
        chunk = ids[start:start + SLICE]
        # ``in_`` over a slice of sorted ids; the range bound lets SQLite walk the primary key.
        session.execute(update(Annotation).where(and_(Annotation.id >= chunk[0], Annotation.id <= chunk[-1],
                                                      Annotation.id.in_(chunk))).values(**stamped)
                        .execution_options(synchronize_session=False))
        done += len(chunk)
        report(progress, done, total, "annotations changed")
    return done



@dataclass(frozen=True)
class QueueItem:
    image_id: int
    annotation_id: int
    bbox: tuple[float, float, float, float]


READING_LINE = 0.02  # of the page's height: shapes whose middles lie this close read as one line


def proposal_queue(project: Project, page_order: list[int] | None = None,
                   selection: ProposalFilter | None = None) -> list[QueueItem]:
    """Every annotation ``selection`` matches (default: every proposal), in a stable reviewing order:
    page by page (in ``page_order``, else by page id), and on a page in reading order (lines top to
    bottom, left to right within a line). Pages not in ``page_order`` are left out when it is given."""
    from engine.store.schema import Image  # noqa: PLC0415

    chosen = selection or ProposalFilter()
    if page_order is not None:
        chosen = replace(chosen, image_ids=frozenset(page_order))
    with project.unit_of_work() as session:
        rows = session.execute(select(Annotation.image_id, Annotation.id, Annotation.bbox_x, Annotation.bbox_y,
                                      Annotation.bbox_w, Annotation.bbox_h, Image.height)
                               .join(Image, Image.id == Annotation.image_id)
                               .where(*chosen.conditions())).all()
    rank = {image_id: position for position, image_id in enumerate(page_order or sorted({r[0] for r in rows}))}
    by_page: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_page[row[0]].append(row)
    queue: list[QueueItem] = []
    for image_id in sorted(by_page, key=rank.__getitem__):
        queue += [QueueItem(row[0], row[1], (row[2], row[3], row[4], row[5]))
                  for row in _reading_order(by_page[image_id])]
    return queue


def _reading_order(rows: list[Any]) -> list[Any]:
    """Lines top to bottom (a shape joins the line whose first middle lies within half its height, or
    within 1 % of the page), then left to right."""
    lines: list[tuple[float, list[Any]]] = []
    for row in sorted(rows, key=lambda r: (r[3] + r[5] / 2, r[2], r[1])):
        middle = row[3] + row[5] / 2
        tolerance = max(row[5] / 2, row[6] * READING_LINE / 2)
        if lines and middle - lines[-1][0] <= tolerance:
            lines[-1][1].append(row)
        else:
            lines.append((middle, [row]))
    return [row for _, line in lines for row in sorted(line, key=lambda r: (r[2], r[1]))]
