"""Add a COCO dataset's categories and annotations to a project's images.

Images are matched by content first, then by path, never by a guess
(``engine.coco.matching``); every annotation's geometry is clipped to its page
and its box and area recomputed (``engine.coco.validation``). Every annotation
that is not added is counted and its reason reported. Annotations are written
in batches, each its own transaction, so that other processes can write in
between; annotations already present (same image, category and geometry) are
skipped, so importing a file again after an interruption completes it and adds
nothing twice.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.categories import get_or_create_category
from engine.coco.geometry import GeometryError, Shape
from engine.coco.matching import ImageMatcher
from engine.coco.validation import checked_shape
from engine.errors import CocoFormatError, MarginaliaError
from engine.fileio import InputFileError, read_plain_file
from engine.paths import displayable
from engine.jobs import CancelToken, ProgressCallback, report
from engine.project import Project
from engine.store.schema import Annotation, Category, Image
from engine.store.types import AnnotationStatus, SourceKind

# Annotations written per transaction: short enough for other writers to interleave.
BATCH_SIZE = 2000


@dataclass(slots=True)
class CocoImportReport:
    annotations_added: int = 0
    already_present: int = 0
    annotations_skipped: int = 0  # every annotation of the file that was not added, whatever the reason
    annotations_corrected: int = 0  # added with geometry clipped or box/area recomputed
    categories_created: list[str] = field(default_factory=list)
    images_matched: int = 0
    problems: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)

    def skip(self, problem: str, annotations: int = 1) -> None:
        self.annotations_skipped += annotations
        self.problems.append(problem)

    def summary(self) -> str:
        corrected = f", {self.annotations_corrected} corrected" if self.annotations_corrected else ""
        return (
            f"{self.annotations_added} annotation(s) added to {self.images_matched} image(s){corrected}, "
            f"{self.already_present} already present, {self.annotations_skipped} skipped, "
            f"{len(self.categories_created)} new categor{'y' if len(self.categories_created) == 1 else 'ies'}, "
            f"{len(self.problems)} problem(s)"
        )


# The largest COCO file read (COCO 2017's own training annotations are 448 MB).
MAX_COCO_BYTES = 2 * 1024**3


def load_dataset(path: Path) -> dict[str, Any]:
    try:
        text = read_plain_file(Path(path), MAX_COCO_BYTES, "a COCO file").decode("utf-8-sig")
    except InputFileError as error:
        raise CocoFormatError(str(error)) from error
    except UnicodeDecodeError as error:
        raise CocoFormatError(f"{displayable(path)} is not UTF-8 text (byte {error.start}), so not a COCO "
                              "file.") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CocoFormatError(
            f"{displayable(path)} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from error
    except RecursionError as error:
        raise CocoFormatError(f"{displayable(path)} nests its lists and objects thousands deep; a COCO file never "
                              "does, so it was not read.") from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise CocoFormatError(
            f"{displayable(path)} is not a COCO dataset: it needs 'images' and 'categories' lists."
        )
    if not isinstance(data.get("annotations", []), list):
        raise CocoFormatError(f"{displayable(path)} is not a COCO dataset: 'annotations' must be a list.")
    return data


def import_coco(
    project: Project, path: Path, *, progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None, batch_size: int = BATCH_SIZE,
) -> CocoImportReport:
    path = Path(path)
    project.require_writable()
    project.check_intact()
    data = load_dataset(path)
    outcome = CocoImportReport()
    annotations = data.get("annotations", [])
    per_image = Counter(raw.get("image_id") for raw in annotations
                        if isinstance(raw, dict) and isinstance(raw.get("image_id"), int | str))
    image_entries, _ = _without_conflicting_ids(data["images"], "image", per_image, outcome)
    per_category = Counter(raw.get("category_id") for raw in annotations
                           if isinstance(raw, dict) and isinstance(raw.get("category_id"), int | str))
    category_entries, refused_categories = _without_conflicting_ids(data["categories"], "category", per_category,
                                                                    outcome)
    with project.unit_of_work() as session:
        matcher = ImageMatcher(session.scalars(select(Image)), coco_folder=path.resolve().parent)
        images = _match_images(matcher, image_entries, per_image, outcome)
        existing = _existing_keys(session, {image.id for image in images.values()})
    _report_unlisted_images(data["images"], per_image, outcome)
    with project.writing(cancel) as session:
        categories: dict[Any, int | None] = {
            key: category.id if category is not None else None
            for key, category in _map_categories(session, category_entries, per_category, outcome).items()}
    categories.update(dict.fromkeys(refused_categories))  # their annotations are counted already
    rows: list[dict[str, Any]] = []
    touched: set[int] = set()
    for done, raw in enumerate(annotations, start=1):
        row = _annotation_row(raw, images, categories, existing, outcome)
        if row is not None:
            rows.append(row)
            touched.add(row["image_id"])
        if len(rows) >= batch_size:
            _write(project, rows, cancel)
            outcome.annotations_added += len(rows)
            rows = []
        if done % 500 == 0:
            report(progress, done, len(annotations), "Importing annotations…")
    if rows:
        _write(project, rows, cancel)
        outcome.annotations_added += len(rows)
    outcome.images_matched = len(touched)
    report(progress, 1, 1, "Done")
    return outcome


def _write(project: Project, rows: list[dict[str, Any]], cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
    with project.writing(cancel) as session:
        session.execute(insert(Annotation), rows)


# -- ids ---------------------------------------------------------------------------


def _without_conflicting_ids(entries: list[Any], what: str, uses: Counter[Any],
                             outcome: CocoImportReport) -> tuple[list[Any], set[Any]]:
    """The entries whose id names one thing: an id listed twice alike counts once; an id listed for
    different things is refused, with the annotations that use it (which of them was meant, no one can say)."""
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), int | str):
            by_id.setdefault(entry["id"], []).append(entry)
    conflicting = {key for key, listed in by_id.items()
                   if len({json.dumps(entry, sort_keys=True, default=str) for entry in listed}) > 1}
    for key in conflicting:
        names = ", ".join(repr(entry.get("file_name" if what == "image" else "name")) for entry in by_id[key][:4])
        outcome.skip(f"{what} id {key!r} is listed {len(by_id[key])} times for different {what}s ({names}); its "
                     f"{uses.get(key, 0)} annotation(s) were skipped, since which was meant cannot be told",
                     uses.get(key, 0))
    kept, seen = [], set()
    for entry in entries:
        key = entry.get("id") if isinstance(entry, dict) else None
        if key in conflicting or (key is not None and key in seen):
            continue
        if key is not None:
            seen.add(key)
        kept.append(entry)
    return kept, conflicting


# -- images --------------------------------------------------------------------


def _match_images(matcher: ImageMatcher, entries: list[Any], per_image: Counter[Any],
                  outcome: CocoImportReport) -> dict[Any, Image]:
    matched: dict[Any, Image] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry:
            outcome.problems.append(f"an image entry without an id was skipped: {str(entry)[:80]}")
            continue
        attributes = entry.get("attributes") if isinstance(entry.get("attributes"), dict) else {}
        page = attributes.get("page_index", 0) if isinstance(attributes.get("page_index", 0), int) else 0
        label = f"image '{entry.get('file_name', '')}' (id {entry['id']})"
        count = per_image.get(entry["id"], 0)
        found = matcher.match(entry, page)
        if found.image is None:
            candidates = (f" (candidates: {'; '.join(displayable(c) for c in found.candidates)})"
                          if found.candidates else "")
            outcome.skip(f"{label} {found.reason}; its {count} annotation(s) were skipped{candidates}", count)
            continue
        image = found.image
        size = (entry.get("width"), entry.get("height"))
        if size != (None, None) and not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
            outcome.skip(f"{label} gives its width and height as {size[0]!r} and {size[1]!r}, not as whole "
                         f"numbers; its {count} annotation(s) were skipped", count)
            continue
        if size not in ((image.width, image.height), (None, None)):
            outcome.skip(
                f"{label} is {entry.get('width')}×{entry.get('height')} in the COCO file but "
                f"{image.width}×{image.height} in the project ({image.path}); its {count} annotation(s) were "
                "skipped", count)
            continue
        matched[entry["id"]] = image
    return matched


def _report_unlisted_images(entries: list[Any], per_image: Counter[Any], outcome: CocoImportReport) -> None:
    listed = {entry.get("id") for entry in entries if isinstance(entry, dict)}
    for image_id, count in per_image.items():
        if image_id not in listed:
            outcome.skip(f"{count} annotation(s) refer to image_id {image_id!r}, which the file does not list; "
                         "skipped", count)


# -- categories ----------------------------------------------------------------


def _map_categories(
    session: Session, entries: list[Any], uses: Counter[Any], outcome: CocoImportReport
) -> dict[Any, Category | None]:
    """Each category id to its category; ``None`` for one refused (its annotations counted with it)."""
    mapped: dict[Any, Category | None] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry or not str(entry.get("name", "")).strip():
            outcome.problems.append(f"a category without id or name was skipped: {str(entry)[:80]}")
            continue
        try:
            parent = None
            supercategory = str(entry.get("supercategory") or "").strip()
            if supercategory and supercategory != str(entry["name"]).strip():
                parent, created = get_or_create_category(session, supercategory)
                if created:
                    outcome.categories_created.append(parent.name)
            category, created = get_or_create_category(
                session, str(entry["name"]), colour=entry.get("color"), parent=parent
            )
        except MarginaliaError as error:
            count = uses.get(entry["id"], 0) if isinstance(entry["id"], int | str) else 0
            outcome.skip(f"category id {entry['id']!r}: {error} Its {count} annotation(s) were skipped.", count)
            if isinstance(entry["id"], int | str):
                mapped[entry["id"]] = None
            continue
        if created:
            outcome.categories_created.append(category.name)
        mapped[entry["id"]] = category
    return mapped


# -- annotations ---------------------------------------------------------------

_GeometryKey = tuple[int, int, tuple[float, ...], str]



def _key(image_id: int, category_id: int, shape: Shape) -> _GeometryKey:
    geometry = json.dumps([shape.polygons, shape.rle], sort_keys=True)
    return (image_id, category_id, tuple(round(value, 3) for value in shape.bbox), geometry)


def _existing_keys(session: Session, image_ids: set[int]) -> set[_GeometryKey]:
    rows = session.scalars(select(Annotation).where(Annotation.image_id.in_(image_ids)))
    return {
        _key(row.image_id, row.category_id,
             Shape((row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h), row.polygons, row.rle, row.area))
        for row in rows
    }


def _annotation_row(
    raw: Any,
    images: dict[Any, Image],
    categories: dict[Any, int | None],
    existing: set[_GeometryKey],
    outcome: CocoImportReport,
) -> dict[str, Any] | None:
    """The new row for one annotation, or ``None`` (counted and reported) when it is not added."""
    if not isinstance(raw, dict):
        outcome.skip("an annotation that is not an object was skipped")
        return None
    label = f"annotation {raw.get('id', '?')}"
    image_id = raw.get("image_id")
    image = images.get(image_id) if isinstance(image_id, int | str) else None
    if image is None:
        if not isinstance(image_id, int | str):
            outcome.skip(f"{label}: image_id {image_id!r} is not an id; skipped")
        return None  # else counted with its image
    wanted = raw.get("category_id")
    wanted = wanted if isinstance(wanted, int | str) else None
    if wanted in categories and categories[wanted] is None:
        return None  # a refused category's: counted with it
    category_id = categories.get(wanted)
    if category_id is None:
        outcome.skip(f"{label}: unknown category_id {raw.get('category_id')}; skipped")
        return None
    try:
        checked = checked_shape(raw, image.width, image.height)
        fields = _provenance(raw)
    except (GeometryError, MarginaliaError) as error:
        outcome.skip(f"{label} on '{Path(image.path).name}': {error}; skipped")
        return None
    shape = checked.shape
    key = _key(image.id, category_id, shape)
    if key in existing:
        outcome.already_present += 1
        return None
    existing.add(key)
    if checked.notes:
        outcome.annotations_corrected += 1
        outcome.corrections.append(f"{label} on '{Path(image.path).name}': " + "; ".join(checked.notes))
    x, y, w, h = shape.bbox
    return dict(image_id=image.id, category_id=category_id, bbox_x=x, bbox_y=y, bbox_w=w, bbox_h=h,
                polygons=shape.polygons, rle=shape.rle, area=shape.area,
                iscrowd=bool(raw.get("iscrowd", 0)), **fields)


def _provenance(raw: dict[str, Any]) -> dict[str, Any]:
    attributes = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
    score = raw.get("score")
    if score is not None and not (isinstance(score, int | float) and 0 <= score <= 1):
        raise MarginaliaError(f"score {score!r} is not between 0 and 1")
    try:
        status = AnnotationStatus(attributes.get("status", AnnotationStatus.ACCEPTED.value))
        source = SourceKind(attributes.get("source", SourceKind.IMPORT.value))
    except ValueError as error:
        raise MarginaliaError(f"unknown status or source ({error})") from error
    return {
        "status": status,
        "source_kind": source,
        "source_model": str(attributes.get("model", "")),
        "source_version": str(attributes.get("model_version", "")),
        "prompt": str(attributes.get("prompt", "")),
        "creator": str(attributes.get("creator", "")),
        "score": None if score is None else float(score),
    }
