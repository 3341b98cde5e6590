"""Creating, editing, reviewing and deleting annotations, one unit of work each.

Every function writes at once (the GUI autosaves every edit) and returns what
an undo needs: deletions return full records that :func:`restore` puts back
under their old ids.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from engine.coco.geometry import PolygonPart, Rle, shape_from, validate_parts
from engine.errors import StaleEditError
from engine.project import Project
from engine.row_versions import Versions, change_fields, guarded_rows, note_versions
from engine.store.schema import Annotation, Image
from engine.store.types import AnnotationStatus, SourceKind, utc_now


@dataclass(frozen=True, slots=True)
class AnnotationRecord:
    """A complete, detached copy of one annotation row."""

    id: int
    image_id: int
    category_id: int
    bbox_x: float
    bbox_y: float
    bbox_w: float
    bbox_h: float
    polygons: list[PolygonPart] | None
    rle: Rle | None
    area: float
    iscrowd: bool
    source_kind: SourceKind
    source_model: str
    source_version: str
    prompt: str
    score: float | None
    status: AnnotationStatus
    creator: str
    created_at: datetime
    updated_at: datetime
    session_id: int | None
    model_run_id: int | None
    reviewed_by: str
    reviewed_at: datetime | None
    reviewed_session_id: int | None
    parent_id: int | None = None
    reading_order: int | None = None
    text: str | None = None
    baseline: list[float] | None = None
    writing_direction: str | None = None
    version: int = 1  # raised by every change: what an edit was made on (team projects refuse a stale one)
    updated_by: str = ""

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.bbox_x, self.bbox_y, self.bbox_w, self.bbox_h)

    @property
    def is_box(self) -> bool:
        return self.polygons is None and self.rle is None


ANNOTATION_FIELDS = tuple(field.name for field in fields(AnnotationRecord))


# What putting an earlier state back must not restore: the row's version only ever rises.
_RESTORED_FIELDS = tuple(name for name in ANNOTATION_FIELDS if name not in {"version", "updated_by"})


def record_of(row: Annotation) -> AnnotationRecord:
    return AnnotationRecord(**{name: getattr(row, name) for name in ANNOTATION_FIELDS})


@dataclass(frozen=True, slots=True)
class Geometry:
    """What a drawing tool produces: a box, or polygon parts (with holes)."""

    bbox: tuple[float, float, float, float] | None = None
    polygons: list[PolygonPart] | None = None
    rle: Rle | None = None


def shape_fields(image: Image, geometry: Geometry) -> dict[str, Any]:
    polygons = validate_parts(geometry.polygons) if geometry.polygons else None
    bbox = None if (polygons or geometry.rle) else geometry.bbox
    shape = shape_from(bbox=bbox, polygons=polygons, rle=geometry.rle, area=None,
                       height=image.height, width=image.width)
    x, y, w, h = shape.bbox
    return {"bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "polygons": shape.polygons,
            "rle": shape.rle, "area": shape.area}


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who or what made an annotation (a curator, an import, or a model run)."""

    source_kind: SourceKind = SourceKind.HUMAN
    source_model: str = ""
    source_version: str = ""
    prompt: str = ""
    score: float | None = None
    model_run_id: int | None = None



def create_annotation(
    project: Project,
    *,
    image_id: int,
    category_id: int,
    geometry: Geometry,
    creator: str,
    session_id: int | None = None,
    source_kind: SourceKind = SourceKind.HUMAN,
    status: AnnotationStatus = AnnotationStatus.ACCEPTED,
    provenance: Provenance | None = None,
) -> AnnotationRecord:
    return create_annotations(project, image_id=image_id, category_id=category_id, geometries=[geometry],
                              creator=creator, session_id=session_id, status=status,
                              provenances=[provenance or Provenance(source_kind)])[0]


def create_annotations(
    project: Project,
    *,
    image_id: int,
    category_id: int,
    geometries: list[Geometry],
    creator: str,
    provenances: list[Provenance],
    session_id: int | None = None,
    status: AnnotationStatus = AnnotationStatus.ACCEPTED,
) -> list[AnnotationRecord]:
    """Several annotations on one page in one transaction (e.g. a model's proposals)."""
    with project.unit_of_work() as session:
        image = session.get_one(Image, image_id)
        rows = [Annotation(image_id=image_id, category_id=category_id, status=status, creator=creator,
                           session_id=session_id, source_kind=origin.source_kind, source_model=origin.source_model,
                           source_version=origin.source_version, prompt=origin.prompt, score=origin.score,
                           model_run_id=origin.model_run_id, **shape_fields(image, geometry))
                for geometry, origin in zip(geometries, provenances, strict=True)]
        session.add_all(rows)
        session.flush()
        return [record_of(row) for row in rows]


def annotations_of(project: Project, image_id: int) -> list[AnnotationRecord]:
    # Plain rows, not ORM objects: a page may hold thousands, and only their values are wanted.
    columns = [getattr(Annotation, name) for name in ANNOTATION_FIELDS]
    with project.unit_of_work() as session:
        rows = session.execute(select(*columns).where(Annotation.image_id == image_id).order_by(Annotation.id))
        return [AnnotationRecord(*row) for row in rows]


def annotations_of_run(project: Project, model_run_id: int | None) -> list[AnnotationRecord]:
    """What one model run proposed, in page and id order."""
    columns = [getattr(Annotation, name) for name in ANNOTATION_FIELDS]
    with project.unit_of_work() as session:
        rows = session.execute(select(*columns).where(Annotation.model_run_id == model_run_id)
                               .order_by(Annotation.image_id, Annotation.id))
        return [AnnotationRecord(*row) for row in rows]


def get_annotations(project: Project, ids: list[int]) -> list[AnnotationRecord]:
    with project.unit_of_work() as session:
        rows = session.scalars(select(Annotation).where(Annotation.id.in_(ids)).order_by(Annotation.id))
        return [record_of(row) for row in rows]


def update_geometry(project: Project, annotation_id: int, geometry: Geometry, *, editor: str = "",
                    expected: Versions | None = None) -> AnnotationRecord:
    with project.unit_of_work() as session:
        rows = guarded_rows(session, [annotation_id], expected, shapes=True)
        if not rows:
            raise StaleEditError("Not saved: the annotation was deleted (by someone else, or in another window).",
                                 [annotation_id])
        row = rows[0]
        for name, value in shape_fields(row.image, geometry).items():
            setattr(row, name, value)
        row.updated_at = utc_now()
        row.updated_by = editor
        session.flush()
        return record_of(row)


def set_category(project: Project, category_by_id: dict[int, int], *, editor: str = "",
                 expected: Versions | None = None, versions: Versions | None = None) -> dict[int, int]:
    """Give each annotation its new category; return the old ones (for undo). ``expected``: the versions the
    curator saw (a changed row refuses the whole edit); ``versions``: filled with the rows' new versions."""
    with project.unit_of_work() as session:
        old = change_fields(session, {i: {"category_id": c} for i, c in category_by_id.items()}, ("category_id",),
                            editor=editor, expected=expected, versions=versions)
        return {annotation_id: fields["category_id"] for annotation_id, fields in old.items()}


def set_text(project: Project, text_by_id: dict[int, str | None], *, editor: str = "",
             expected: Versions | None = None, versions: Versions | None = None) -> dict[int, str | None]:
    """Give each annotation its transcription (``None`` or "": none); return the old ones (for undo)."""
    with project.unit_of_work() as session:
        old = change_fields(session, {i: {"text": t or None} for i, t in text_by_id.items()}, ("text",),
                            editor=editor, expected=expected, versions=versions)
        return {annotation_id: fields["text"] for annotation_id, fields in old.items()}


@dataclass(frozen=True, slots=True)
class ReviewState:
    status: AnnotationStatus
    reviewed_by: str
    reviewed_at: datetime | None
    reviewed_session_id: int | None


def review(
    project: Project, ids: list[int], status: AnnotationStatus, *, reviewer: str,
    session_id: int | None, expected: Versions | None = None, versions: Versions | None = None,
) -> dict[int, ReviewState]:
    """Accept or reject annotations; return their previous review states (for undo)."""
    now = utc_now()
    states = {annotation_id: ReviewState(status, reviewer, now, session_id) for annotation_id in ids}
    return restore_review(project, states, editor=reviewer, expected=expected, versions=versions)


_REVIEW_FIELDS = ("status", "reviewed_by", "reviewed_at", "reviewed_session_id")


def restore_review(project: Project, states: dict[int, ReviewState], *, editor: str = "",
                   expected: Versions | None = None, versions: Versions | None = None) -> dict[int, ReviewState]:
    with project.unit_of_work() as session:
        changes = {i: {name: getattr(state, name) for name in _REVIEW_FIELDS} for i, state in states.items()}
        old = change_fields(session, changes, _REVIEW_FIELDS, editor=editor or None, expected=expected,
                            versions=versions)
        return {annotation_id: ReviewState(**fields) for annotation_id, fields in old.items()}


def descendants(project: Project, ids: list[int], status: AnnotationStatus | None = None) -> list[int]:
    """The children of ``ids``, theirs, and so on (a paragraph's lines and words), optionally only those of
    ``status``; breadth first, without ``ids`` themselves."""
    found: list[int] = []
    seen = set(ids)
    level = list(ids)
    with project.unit_of_work() as session:
        while level:
            rows = session.execute(select(Annotation.id, Annotation.status).where(Annotation.parent_id.in_(level))).all()
            level = [annotation_id for annotation_id, _ in rows if annotation_id not in seen]
            seen.update(level)
            found += [annotation_id for annotation_id, row_status in rows
                      if annotation_id in level and (status is None or row_status == status)]
    return found


def delete_annotations(project: Project, ids: list[int], *, expected: Versions | None = None) -> list[AnnotationRecord]:
    with project.unit_of_work() as session:
        rows = guarded_rows(session, ids, expected, shapes=True)
        records = [record_of(row) for row in rows]
        session.execute(delete(Annotation).where(Annotation.id.in_(ids)))
        return records


def restore(project: Project, records: list[AnnotationRecord]) -> None:
    """Put deleted annotations back exactly, ids included."""
    if not records:
        return
    with project.unit_of_work() as session:
        # A table insert, not the ORM's: the ORM would start the version counter again at 1, and an edit made
        # on the version before the deletion would then be refused.
        session.execute(Annotation.__table__.insert(),
                        [{name: getattr(record, name) for name in ANNOTATION_FIELDS} for record in records])


def put_back(project: Project, record: AnnotationRecord, *, editor: str = "", expected: Versions | None = None,
             versions: Versions | None = None) -> None:
    """Overwrite an annotation with an earlier state of itself (undo of an edit); its version still rises."""
    with project.unit_of_work() as session:
        rows = guarded_rows(session, [record.id], expected, shapes=True)
        if not rows:
            raise StaleEditError("Cannot undo: the annotation was deleted since (by someone else, or in another "
                                 "window).", [record.id])
        for name in _RESTORED_FIELDS:
            setattr(rows[0], name, getattr(record, name))
        rows[0].updated_by = editor
        session.flush()
        note_versions(rows, versions)
