"""Add a COCO dataset's categories and annotations to a project's images.

Images are matched by ``file_name`` (as a trailing part of the stored path,
then by bare name when that is unique), then by content hash when the file
carries one. The whole file is one transaction: it lands completely or not at
all. Annotations already present (same image, category and geometry) are
skipped, so importing a file twice adds nothing the second time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.categories import get_or_create_category
from engine.coco.geometry import GeometryError, Shape, polygons_from_coco, rle_from_coco, shape_from
from engine.errors import CocoFormatError, MarginaliaError
from engine.jobs import ProgressCallback, report
from engine.project import Project
from engine.store.schema import Annotation, Category, Image
from engine.store.types import AnnotationStatus, SourceKind


@dataclass(slots=True)
class CocoImportReport:
    annotations_added: int = 0
    already_present: int = 0
    categories_created: list[str] = field(default_factory=list)
    images_matched: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.annotations_added} annotation(s) added to {self.images_matched} image(s), "
            f"{self.already_present} already present, {len(self.categories_created)} new "
            f"categor{'y' if len(self.categories_created) == 1 else 'ies'}, "
            f"{len(self.problems)} problem(s)"
        )


def load_dataset(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise CocoFormatError(f"No COCO file at {path}.") from error
    except (OSError, UnicodeDecodeError) as error:
        raise CocoFormatError(f"Cannot read {path}: {error}.") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CocoFormatError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise CocoFormatError(
            f"{path} is not a COCO dataset: it needs 'images' and 'categories' lists."
        )
    if not isinstance(data.get("annotations", []), list):
        raise CocoFormatError(f"{path} is not a COCO dataset: 'annotations' must be a list.")
    return data


def import_coco(
    project: Project, path: Path, *, progress: ProgressCallback | None = None
) -> CocoImportReport:
    data = load_dataset(path)
    outcome = CocoImportReport()
    with project.unit_of_work() as session:
        images = _match_images(session, data["images"], outcome)
        categories = _map_categories(session, data["categories"], outcome)
        existing = _existing_keys(session, {image.id for image in images.values()})
        annotations = data.get("annotations", [])
        touched: set[int] = set()
        for done, raw in enumerate(annotations, start=1):
            added = _add_annotation(session, raw, images, categories, existing, outcome)
            if added is not None:
                touched.add(added)
            if done % 500 == 0:
                report(progress, done, len(annotations), "Importing annotations…")
        outcome.images_matched = len(touched)
    report(progress, 1, 1, "Done")
    return outcome


# -- images --------------------------------------------------------------------


def _match_images(
    session: Session, entries: list[Any], outcome: CocoImportReport
) -> dict[Any, Image]:
    project_images = list(session.scalars(select(Image)))
    by_hash: dict[tuple[str, int], Image] = {(i.sha256, i.page_index): i for i in project_images}
    by_name: dict[tuple[str, int], list[Image]] = defaultdict(list)
    for image in project_images:
        by_name[(PurePosixPath(Path(image.path).as_posix()).name.lower(), image.page_index)].append(image)

    matched: dict[Any, Image] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry:
            outcome.problems.append(f"an image entry without an id was skipped: {str(entry)[:80]}")
            continue
        attributes = entry.get("attributes") if isinstance(entry.get("attributes"), dict) else {}
        page = attributes.get("page_index", 0) if isinstance(attributes.get("page_index", 0), int) else 0
        file_name = str(entry.get("file_name", "")).replace("\\", "/")
        image = _by_file_name(file_name, page, by_name)
        if image is None and isinstance(attributes.get("sha256"), str):
            image = by_hash.get((attributes["sha256"], page))
        if image is None:
            outcome.problems.append(f"image '{file_name}' is not in the project; its annotations were skipped")
            continue
        if (entry.get("width"), entry.get("height")) not in ((image.width, image.height), (None, None)):
            outcome.problems.append(
                f"image '{file_name}' is {entry.get('width')}×{entry.get('height')} in the COCO file but "
                f"{image.width}×{image.height} in the project; its annotations were skipped"
            )
            continue
        matched[entry["id"]] = image
    return matched


def _by_file_name(file_name: str, page: int, by_name: dict[tuple[str, int], list[Image]]) -> Image | None:
    if not file_name:
        return None
    candidates = by_name.get((PurePosixPath(file_name).name.lower(), page), [])
    suffix = "/" + file_name.lstrip("/").lower()
    exact = [image for image in candidates if Path(image.path).as_posix().lower().endswith(suffix)]
    if len(exact) == 1:
        return exact[0]
    return candidates[0] if len(candidates) == 1 else None


# -- categories ----------------------------------------------------------------


def _map_categories(
    session: Session, entries: list[Any], outcome: CocoImportReport
) -> dict[Any, Category]:
    mapped: dict[Any, Category] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry or not str(entry.get("name", "")).strip():
            outcome.problems.append(f"a category without id or name was skipped: {str(entry)[:80]}")
            continue
        parent = None
        supercategory = str(entry.get("supercategory") or "").strip()
        if supercategory and supercategory != str(entry["name"]).strip():
            parent, created = get_or_create_category(session, supercategory)
            if created:
                outcome.categories_created.append(parent.name)
        category, created = get_or_create_category(
            session, str(entry["name"]), colour=entry.get("color"), parent=parent
        )
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


def _add_annotation(
    session: Session,
    raw: Any,
    images: dict[Any, Image],
    categories: dict[Any, Category],
    existing: set[_GeometryKey],
    outcome: CocoImportReport,
) -> int | None:
    label = f"annotation {raw.get('id', '?')}" if isinstance(raw, dict) else "an annotation"
    if not isinstance(raw, dict):
        outcome.problems.append(f"{label} is not an object; skipped")
        return None
    image = images.get(raw.get("image_id"))
    if image is None:
        return None  # its image was already reported
    category = categories.get(raw.get("category_id"))
    if category is None:
        outcome.problems.append(f"{label}: unknown category_id {raw.get('category_id')}; skipped")
        return None
    try:
        shape = _shape(raw, image)
        fields = _provenance(raw)
    except (GeometryError, MarginaliaError) as error:
        outcome.problems.append(f"{label} on '{Path(image.path).name}': {error}; skipped")
        return None
    key = _key(image.id, category.id, shape)
    if key in existing:
        outcome.already_present += 1
        return None
    existing.add(key)
    x, y, w, h = shape.bbox
    session.add(Annotation(
        image_id=image.id, category_id=category.id, bbox_x=x, bbox_y=y, bbox_w=w, bbox_h=h,
        polygons=shape.polygons, rle=shape.rle, area=shape.area,
        iscrowd=bool(raw.get("iscrowd", 0)), **fields,
    ))
    outcome.annotations_added += 1
    return image.id


def _shape(raw: dict[str, Any], image: Image) -> Shape:
    segmentation = raw.get("segmentation")
    attributes = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
    if attributes.get("shape") == "box" and raw.get("bbox") is not None:
        segmentation = None  # Marginalia's own box, written out as a rectangle
    polygons = rle = None
    if isinstance(segmentation, dict):
        rle = rle_from_coco(segmentation, image.height, image.width)
    elif isinstance(segmentation, list) and segmentation:
        polygons = polygons_from_coco(segmentation)
    elif segmentation not in (None, []):
        raise GeometryError("segmentation is neither a polygon list nor an RLE object")
    bbox = raw.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, int | float) for v in bbox)):
            raise GeometryError("bbox must be four numbers [x, y, width, height]")
        bbox = tuple(float(v) for v in bbox)
    area = raw.get("area")
    area = float(area) if isinstance(area, int | float) and area >= 0 else None
    return shape_from(bbox=bbox, polygons=polygons, rle=rle, area=area,
                      height=image.height, width=image.width)


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
