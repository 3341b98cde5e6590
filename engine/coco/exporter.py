"""Write a project's annotations as a COCO dataset.

Ids are renumbered from 1. ``file_name`` is relative to the images root (by
default the deepest folder holding every image), or, exported with images,
points into the ``images/`` folder beside the file (``export_images.py``).
Coordinates and areas are rounded to 2 decimals. Marginalia's provenance
(source, status, creator…) rides along in an ``attributes`` object on each
annotation and image, which COCO tools ignore.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import engine
from engine.coco.export_images import IMAGES_FOLDER, PageSource, image_names, place_images
from engine.coco.geometry import has_holes, rle_of
from engine.errors import MarginaliaError
from engine.export_files import ExportFiles, portable_name
from engine.jobs import CancelToken, ProgressCallback, report
from engine.paths import displayable
from engine.project import Project
from engine.store.schema import Annotation, Category, Image, ProjectInfo
from engine.store.types import AnnotationStatus


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    images: int
    categories: int
    annotations: int
    images_root: Path  # what the file names are relative to (the images/ folder when exported with them)


def export_coco(
    project: Project,
    out: Path,
    *,
    include_proposals: bool = False,
    image_root: Path | None = None,
    with_images: bool = False,
    link_images: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ExportSummary:
    """Export accepted annotations (and proposals when asked) to ``out``.

    ``with_images`` also puts every page into ``images/`` beside ``out`` (copied, or
    hard-linked with ``link_images``) and makes ``file_name`` point there. Only new files
    are written, or with ``overwrite`` files an earlier export wrote (:mod:`engine.export_files`).
    """
    out = Path(os.path.abspath(out))
    project.check_intact()
    statuses = [AnnotationStatus.ACCEPTED]
    if include_proposals:
        statuses.append(AnnotationStatus.PROPOSED)
    with project.unit_of_work() as session:
        dataset, sources, root = _build(session, statuses, image_root, progress)
    files = ExportFiles(project, out.parent, overwrite=overwrite)
    images_folder = out.parent / IMAGES_FOLDER
    if with_images:
        names = image_names(sources)
        files.check([out, *(images_folder / name for name in names)])
        place_images(dataset["images"], sources, names, images_folder, files, link=link_images,
                     progress=progress, cancel=cancel)
    else:
        _refuse_names_json_cannot_hold(sources)
        files.check([out])
    try:
        text = json.dumps(dataset, ensure_ascii=False, indent=1, allow_nan=False)
    except ValueError as error:
        raise MarginaliaError(f"Nothing was exported: the project holds a shape with a coordinate that is not a "
                              f"number ({error}).") from error
    try:
        files.write(out, text.encode("utf-8"))
        files.commit()
    except OSError as error:
        raise MarginaliaError(f"Cannot write {displayable(out)}: {error.strerror or error}.") from error
    return ExportSummary(Path(out), len(dataset["images"]), len(dataset["categories"]),
                         len(dataset["annotations"]),
                         images_folder if with_images else Path(root))


def _refuse_names_json_cannot_hold(sources: list[PageSource]) -> None:
    unreadable = [source.relative for source in sources if portable_name(source.relative) != source.relative]
    if unreadable:
        raise MarginaliaError(
            f"Nothing was exported: {len(unreadable)} page(s) have file names that are not UTF-8 (for example "
            f"{displayable(unreadable[0])}), which a COCO file cannot name exactly. Export with the images (their "
            "copies get UTF-8 names), or rename the scans and relink them.")


def _build(
    session: Session,
    statuses: list[AnnotationStatus],
    image_root: Path | None,
    progress: ProgressCallback | None,
) -> tuple[dict[str, Any], list[PageSource], PurePath]:
    images = list(session.scalars(select(Image).order_by(Image.id)))
    categories = list(session.scalars(select(Category).order_by(Category.id)))
    annotations = list(
        session.scalars(
            select(Annotation)
            .where(Annotation.status.in_(statuses))
            .options(selectinload(Annotation.image))
            .order_by(Annotation.image_id, Annotation.id)
        )
    )
    info = session.get(ProjectInfo, 1)
    root = PurePath(image_root) if image_root else _common_folder([image.path for image in images])
    if image_root is not None:
        _check_root(images, root)
    sources = [PageSource(image.id, image.path, image.page_index, image.page_count, image.format, image.orientation,
                          image.sha256, PurePath(image.path).relative_to(root).as_posix()) for image in images]
    licences = sorted({image.rights for image in images if image.rights})
    licence_ids = {text: number for number, text in enumerate(licences, start=1)}
    image_ids = {image.id: number for number, image in enumerate(images, start=1)}
    category_ids = {category.id: number for number, category in enumerate(categories, start=1)}
    names = {category.id: category.name for category in categories}

    exported_annotations = []
    for number, annotation in enumerate(annotations, start=1):
        exported_annotations.append(_annotation(annotation, number, image_ids, category_ids))
        if number % 500 == 0:
            report(progress, number, len(annotations), "Writing annotations…")
    report(progress, len(annotations), len(annotations), "Writing file…")
    return {
        "info": {
            "description": info.name if info else "",
            "version": "1.0",
            "year": datetime.now(UTC).year,
            "contributor": "",
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
            "generator": f"Marginalia {engine.__version__}",
        },
        "licenses": [{"id": number, "name": text, "url": ""} for text, number in licence_ids.items()],
        "images": [_image(image, image_ids[image.id], source.relative, licence_ids)
                   for image, source in zip(images, sources, strict=True)],
        "categories": [
            {
                "id": category_ids[category.id],
                "name": category.name,
                "supercategory": names.get(category.parent_id, "") if category.parent_id else "",
                "color": category.colour,
            }
            for category in categories
        ],
        "annotations": exported_annotations,
    }, sources, root


def default_images_root(project: Project) -> Path:
    """The deepest folder holding every page: what exported file names are relative to unless told otherwise."""
    with project.unit_of_work() as session:
        return Path(_common_folder([project.roots.resolve(path) for path in session.scalars(select(Image.path))]))


def _common_folder(paths: list[str]) -> PurePath:
    if not paths:
        return PurePath("/")
    return PurePath(os.path.commonpath([os.path.dirname(path) for path in paths]))


def _check_root(images: list[Image], root: PurePath) -> None:
    outside = [image.path for image in images if not PurePath(image.path).is_relative_to(root)]
    if outside:
        raise MarginaliaError(
            f"{len(outside)} of the {len(images)} page(s) are not inside the images folder {displayable(root)} "
            f"(for example {displayable(outside[0])}), so their file names could not be relative to it. Choose a "
            "folder that holds every page, or leave the images folder out to use their common folder.")


def _image(image: Image, number: int, relative: str, licence_ids: dict[str, int]) -> dict[str, Any]:
    return {
        "id": number,
        "file_name": relative,  # UTF-8 (checked), or replaced by the image copy's name
        "width": image.width,
        "height": image.height,
        "license": licence_ids.get(image.rights, 0),
        "date_captured": "",
        "attributes": {
            "sha256": image.sha256,
            "page_index": image.page_index,
            "title": image.title,
            "shelfmark": image.shelfmark,
            "date": image.date,
            "rights": image.rights,
            "notes": image.notes,
        },
    }


def _segmentation(annotation: Annotation) -> list[list[float]] | dict[str, Any]:
    image = annotation.image
    if annotation.rle is not None or has_holes(annotation.polygons):
        # COCO polygons cannot hold holes: such shapes go out as exact RLE.
        return rle_of(annotation.polygons, annotation.rle, image.height, image.width)
    if annotation.polygons:
        return [[_round(value) for value in part["exterior"]] for part in annotation.polygons]
    # A plain box: COCO tools expect a segmentation, so the box goes out as its
    # rectangle, flagged so that Marginalia reads it back as a box.
    x, y, w, h = annotation.bbox_x, annotation.bbox_y, annotation.bbox_w, annotation.bbox_h
    return [[_round(value) for value in (x, y, x + w, y, x + w, y + h, x, y + h)]]


def _round(value: float) -> float:
    # Two decimals are a hundredth of a pixel: float noise (142.66999999999996) helps no one.
    return round(float(value), 2)


def _annotation(
    annotation: Annotation, number: int, image_ids: dict[int, int], category_ids: dict[int, int]
) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "id": number,
        "image_id": image_ids[annotation.image_id],
        "category_id": category_ids[annotation.category_id],
        "bbox": [_round(annotation.bbox_x), _round(annotation.bbox_y), _round(annotation.bbox_w),
                 _round(annotation.bbox_h)],
        "area": _round(annotation.area),
        "segmentation": _segmentation(annotation),
        "iscrowd": int(annotation.iscrowd),
    }
    if annotation.score is not None:
        exported["score"] = annotation.score
    exported["attributes"] = {
        "status": annotation.status.value,
        "source": annotation.source_kind.value,
        "model": annotation.source_model,
        "model_version": annotation.source_version,
        "prompt": annotation.prompt,
        "creator": annotation.creator,
        "created_at": annotation.created_at.isoformat(timespec="seconds"),
    }
    if annotation.polygons is None and annotation.rle is None:
        exported["attributes"]["shape"] = "box"
    return exported
