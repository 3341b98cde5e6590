"""Annotations out as W3C Web Annotations on IIIF canvases, with a Presentation 3 manifest that shows them.

Into the export folder go ``manifest.json``, one ``AnnotationPage`` per annotated page under
``annotations/``, and, for pages that have no IIIF image service (local scans), the page images under
``images/`` (JPEG, PNG and WebP as they are; any other page as a PNG of the page as displayed, which a web
browser can show). Every shape is its own ``Annotation`` on its page's canvas, in the canvas's coordinates,
with an ``SvgSelector`` (the outline, holes kept) and a ``FragmentSelector`` (its box) — the exact one
first, since some viewers read only the first. Bodies: the category as a ``tagging`` TextualBody, a
transcription as ``supplementing``, and for a model's proposal not yet reviewed a ``commenting`` body that
says so.

Identifiers are addresses under ``base_url`` — where the folder will be published (by default the folder's
own ``file:`` address, which a viewer on this computer can open but a web page cannot).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from shapely.ops import unary_union
from sqlalchemy import select

import engine
from engine.coco.export_images import (
    IMAGES_FOLDER,
    PageSource,
    image_names,
    place_images,
)
from engine.errors import MarginaliaError
from engine.export_files import ExportFiles, portable_name
from engine.jobs import CancelToken, ProgressCallback, report
from engine.layout.shapes import parts_of
from engine.paths import displayable
from engine.project import Project
from engine.store.schema import Annotation, Category, Image, ProjectInfo
from engine.store.types import AnnotationStatus, SourceKind
from engine.webannotation.canvases import PageCanvas, page_canvases
from engine.webannotation.publication import publication_base
from engine.webannotation.selectors import fragment_value, svg_value

MANIFEST_FILE = "manifest.json"
ANNOTATIONS_FOLDER = "annotations"
PRESENTATION_3 = "http://iiif.io/api/presentation/3/context.json"
WEB_ANNOTATION = "http://www.w3.org/ns/anno.jsonld"
BROWSER_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass
class WebAnnotationExport:
    folder: Path
    base_url: str
    pages: int = 0
    annotation_pages: int = 0
    annotations: int = 0
    images: int = 0
    proposals_left_out: int = 0
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        left = (f"; {self.proposals_left_out} proposal(s) not yet reviewed were left out (accept them first, or "
                "export with proposals)") if self.proposals_left_out else ""
        local = "" if not self.base_url.startswith("file:") else (
            "; identifiers are this folder's file: address — export with a base address to publish it on the web")
        return (f"Wrote a IIIF manifest of {self.pages} page(s) with {self.annotations} annotation(s) on "
                f"{self.annotation_pages} page(s) and {self.images} page image(s) to "
                f"{displayable(str(self.folder))}{left}{local}")


def export_web_annotations(project: Project, folder: Path, *, base_url: str | None = None,
                           include_proposals: bool = False, image_ids: list[int] | None = None,
                           overwrite: bool = False, progress: ProgressCallback | None = None,
                           cancel: CancelToken | None = None) -> WebAnnotationExport:
    """Write the manifest, the annotation pages and the local pages' images into ``folder`` (only new files,
    or with ``overwrite`` files an earlier export wrote: :mod:`engine.export_files`)."""
    folder = Path(os.path.abspath(folder))
    base = publication_base(base_url, folder)
    project.check_intact()
    statuses = [AnnotationStatus.ACCEPTED, *([AnnotationStatus.PROPOSED] if include_proposals else [])]
    done = WebAnnotationExport(folder, base)
    with project.unit_of_work() as session:
        query = select(Image).order_by(Image.id)
        images = list(session.scalars(query if image_ids is None else query.where(Image.id.in_(image_ids))))
        if not images:
            raise MarginaliaError("Nothing was exported: the project has no pages.")
        canvases = page_canvases(session, images, base)
        names = {category.id: category.name for category in session.scalars(select(Category))}
        rows = defaultdict(list)
        for row in session.scalars(select(Annotation).where(Annotation.image_id.in_([i.id for i in images]))
                                   .order_by(Annotation.image_id, Annotation.reading_order, Annotation.id)):
            if row.status in statuses:
                rows[row.image_id].append(row)
            elif row.status == AnnotationStatus.PROPOSED:
                done.proposals_left_out += 1
        title = (info.name if (info := session.get(ProjectInfo, 1)) else "") or folder.name
        local = [image for image in images if not canvases[image.id].service_id]
        sources = [PageSource(image.id, project.roots.resolve(image.path), image.page_index, image.page_count,
                              image.format, image.orientation, image.sha256, PurePath(image.path).name)
                   for image in local]
        image_files = dict(zip([image.id for image in local], image_names(sources, BROWSER_FORMATS), strict=True))
        stems = _page_stems(images)
        pages = {image.id: _annotation_page(image, rows[image.id], canvases[image.id], names,
                                            f"{base}{ANNOTATIONS_FOLDER}/{quote(stems[image.id])}.json")
                 for image in images if rows[image.id]}
        manifest = _manifest(title, base, images, canvases, pages, image_files)
    targets = [folder / MANIFEST_FILE, *(folder / ANNOTATIONS_FOLDER / f"{stems[i]}.json" for i in pages),
               *(folder / IMAGES_FOLDER / name for name in image_files.values())]
    texts = {image_id: _json(page) for image_id, page in pages.items()}  # a shape JSON cannot hold stops it here
    manifest_text = _json(manifest)
    files = ExportFiles(project, folder, overwrite=overwrite)
    files.check(targets)
    (folder / ANNOTATIONS_FOLDER).mkdir(parents=True, exist_ok=True)
    place_images([{} for _ in sources], sources, list(image_files.values()), folder / IMAGES_FOLDER, files,
                 progress=progress, cancel=cancel, as_they_are=BROWSER_FORMATS)
    for number, (image_id, text) in enumerate(texts.items(), start=1):
        report(progress, number, len(texts), "Writing annotation pages…")
        files.write(folder / ANNOTATIONS_FOLDER / f"{stems[image_id]}.json", text, durable=False)
    files.write(folder / MANIFEST_FILE, manifest_text)
    files.commit()
    done.pages, done.annotation_pages, done.images = len(images), len(pages), len(image_files)
    done.annotations = sum(len(page["items"]) for page in pages.values())
    done.files = targets
    return done


def _page_stems(images: list[Image]) -> dict[int, str]:
    stems = {image.id: portable_name(PurePath(image.path).stem)
             + (f"_p{image.page_index + 1}" if image.page_count > 1 else "") for image in images}
    shared = {stem for stem, count in Counter(s.casefold() for s in stems.values()).items() if count > 1}
    return {image_id: stem + (f"_id{image_id}" if stem.casefold() in shared else "")
            for image_id, stem in stems.items()}


def _annotation_page(image: Image, rows: list[Annotation], canvas: PageCanvas, names: dict[int, str],
                     page_id: str) -> dict[str, Any]:
    return {"@context": [WEB_ANNOTATION, PRESENTATION_3], "id": page_id, "type": "AnnotationPage",
            "label": {"none": [image.title or PurePath(image.path).name]},
            "items": [web_annotation(row, names.get(row.category_id, ""), canvas, f"{page_id}#{row.id}")
                      for row in rows]}


def web_annotation(row: Annotation, category: str, canvas: PageCanvas, annotation_id: str) -> dict[str, Any]:
    """One annotation: its shape on ``canvas`` in canvas coordinates, its category and text as bodies."""
    parts = [canvas.to_canvas(part) for part in parts_of(row.polygons, row.rle, (row.bbox_x, row.bbox_y,
             row.bbox_w, row.bbox_h), canvas.image_width, canvas.image_height)]
    fragment = {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                "value": fragment_value(unary_union(parts).bounds)}
    svg = {"type": "SvgSelector", "value": svg_value(parts)}
    is_box = row.polygons is None and row.rle is None
    bodies = [{"type": "TextualBody", "value": category, "purpose": "tagging", "format": "text/plain"}]
    if row.text:
        bodies.append({"type": "TextualBody", "value": row.text, "purpose": "supplementing", "format": "text/plain"})
    if row.status == AnnotationStatus.PROPOSED:
        score = f" (score {row.score:.2f})" if row.score is not None else ""
        bodies.append({"type": "TextualBody", "purpose": "commenting", "format": "text/plain",
                       "value": f"Proposed by {row.source_model or 'a model'}{score}; not yet reviewed."})
    source: dict[str, Any] = {"id": canvas.canvas_id, "type": "Canvas"}
    if canvas.manifest_id:
        source["partOf"] = [{"id": canvas.manifest_id, "type": "Manifest"}]
    made_by = ({"type": "Software", "name": row.source_model} if row.source_kind == SourceKind.MODEL
               and row.source_model else {"type": "Person", "name": row.creator} if row.creator else None)
    annotation: dict[str, Any] = {
        "id": annotation_id, "type": "Annotation", "motivation": "supplementing" if row.text else "tagging",
        "body": bodies,
        "target": {"type": "SpecificResource", "source": source,
                   "selector": [fragment, svg] if is_box else [svg, fragment]},
        "created": _timestamp(row.created_at), "modified": _timestamp(row.updated_at),
        "generator": {"type": "Software", "name": f"Marginalia {engine.__version__}"},
    }
    if made_by is not None:
        annotation["creator"] = made_by
    return annotation


def _timestamp(moment: datetime) -> str:
    """xsd:dateTime with its zone: the store keeps UTC, naive where the database drops the zone."""
    return moment.isoformat(timespec="seconds") + ("Z" if moment.tzinfo is None else "")


def _manifest(title: str, base: str, images: list[Image], canvases: dict[int, PageCanvas],
              pages: dict[int, dict[str, Any]], image_files: dict[int, str]) -> dict[str, Any]:
    return {"@context": PRESENTATION_3, "id": f"{base}{MANIFEST_FILE}", "type": "Manifest",
            "label": {"none": [title]},
            "items": [_canvas(image, canvases[image.id], pages.get(image.id), base, image_files.get(image.id))
                      for image in images]}


def _canvas(image: Image, canvas: PageCanvas, page: dict[str, Any] | None, base: str,
            image_file: str | None) -> dict[str, Any]:
    if image_file is not None:
        suffix = PurePath(image_file).suffix.lower()
        media = {".png": "image/png", ".webp": "image/webp"}.get(suffix, _MEDIA_TYPES.get(image.format, "image/jpeg"))
        body: dict[str, Any] = {"id": f"{base}{IMAGES_FOLDER}/{quote(image_file)}", "type": "Image", "format": media,
                                "width": image.width, "height": image.height}
    else:
        whole = "max" if canvas.service_version == 3 else "full"
        body = {"id": f"{canvas.service_id}/full/{whole}/0/default.jpg", "type": "Image", "format": "image/jpeg",
                "service": [{"id": canvas.service_id, "type": f"ImageService{canvas.service_version or 2}",
                             "profile": "level0"}]}
    metadata = [{"label": {"en": [label]}, "value": {"none": [value]}} for label, value in
                (("Title", image.title), ("Shelfmark", image.shelfmark), ("Date", image.date),
                 ("Rights", image.rights)) if value]
    entry: dict[str, Any] = {
        "id": canvas.canvas_id, "type": "Canvas", "label": {"none": [image.title or PurePath(image.path).name]},
        "width": canvas.width, "height": canvas.height,
        "items": [{"id": f"{base}painting/{image.id}", "type": "AnnotationPage", "items": [{
            "id": f"{base}painting/{image.id}/image", "type": "Annotation", "motivation": "painting",
            "body": body, "target": canvas.canvas_id}]}],
    }
    if metadata:
        entry["metadata"] = metadata
    if page is not None:
        entry["annotations"] = [{"id": page["id"], "type": "AnnotationPage"}]
    return entry


def _json(document: dict[str, Any]) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
    except ValueError as error:
        raise MarginaliaError(f"Nothing was exported: a shape has a coordinate that is not a number ({error}).") \
            from error
