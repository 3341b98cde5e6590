"""W3C Web Annotations (and their IIIF Presentation 2 form, Open Annotation) onto the pages they target.

Read: an ``AnnotationPage`` or ``AnnotationCollection``, a single ``Annotation``, a list of them (Annotorious'
export), a Presentation 2 ``sc:AnnotationList`` (Mirador 2), or a manifest with annotation pages embedded.
Each annotation's target names a canvas (or the image or image service a viewer showed); the page is the
one that canvas is (:class:`CanvasFinder`), and the shape comes from its ``SvgSelector`` (exact), else its
``FragmentSelector`` (``xywh=`` in pixels or percent), scaled from canvas to page pixels.

Bodies: a ``tagging`` (or ``classifying``/``identifying``) body names the category (created when new); a
``supplementing`` or ``transcribing`` body is the shape's text. Comments have no place on a shape here: they
are counted in the report, not stored as something they are not. An annotation that cannot be placed — no
matching page, a point, a whole canvas, a shape outside it — is refused with its reason; one already in the
project (same page, same category, the same area within 1 %) is not added twice. Nothing is written unless
the whole file was read; all that is added goes in one transaction.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from sqlalchemy import select

from engine.annotations import Geometry, shape_fields
from engine.categories import get_or_create_category
from engine.coco.geometry import GeometryError
from engine.errors import MarginaliaError
from engine.fileio import read_plain_file
from engine.layout.shapes import parts_of
from engine.outlines import checked_area
from engine.project import Project
from engine.store.schema import Annotation, Image
from engine.store.types import AnnotationStatus, SourceKind
from engine.webannotation.canvases import CanvasFinder, PageCanvas
from engine.webannotation.selectors import (
    SelectorError,
    is_rectangle,
    read_fragment,
    read_svg,
)

MAX_FILE_BYTES = 256 * 1024 * 1024
SAME_AREA_IOU = 0.99
_TAGS = {"tagging", "classifying", "identifying"}
_TEXTS = {"supplementing", "transcribing"}
_SHOWN = 200  # refusals listed one by one; the rest counted


class AnnotationFileError(MarginaliaError):
    """A file that holds no Web Annotations, with the reason; nothing was imported."""


@dataclass
class WebAnnotationImport:
    added: int = 0
    already: int = 0
    refused: list[str] = field(default_factory=list)
    refused_count: int = 0
    corrected: list[str] = field(default_factory=list)
    comments_not_kept: int = 0
    categories_created: list[str] = field(default_factory=list)
    image_ids: set[int] = field(default_factory=set)

    def refuse(self, text: str) -> None:
        self.refused_count += 1
        if len(self.refused) < _SHOWN:
            self.refused.append(text)

    def summary(self) -> str:
        comments = (f"; {self.comments_not_kept} comment(s) not kept (a shape here holds a category and a "
                    "transcription, not comments)") if self.comments_not_kept else ""
        return (f"{self.added} annotation(s) added on {len(self.image_ids)} page(s), {self.already} already in the "
                f"project, {self.refused_count} refused, {len(self.corrected)} corrected{comments}")


@dataclass(frozen=True, slots=True)
class _Found:
    page: PageCanvas
    area: BaseGeometry  # page pixels
    parts: list[dict[str, Any]]  # the same, as the store keeps polygons
    category: str
    text: str | None
    label: str
    creator: str


def import_web_annotations(project: Project, files: list[Path], *, page_id: int | None = None,
                           default_category: str = "annotation", creator: str = "") -> WebAnnotationImport:
    """Add the annotations in ``files`` to the pages they target (``page_id``: put them all on that page,
    whatever they target, in its canvas's coordinates)."""
    project.require_writable()
    documents = [(path, _read(path)) for path in files]
    report = WebAnnotationImport()
    with project.unit_of_work() as session:
        finder = CanvasFinder(session)
        forced = None
        if page_id is not None:
            forced = finder.page(page_id)
            if forced is None:
                raise MarginaliaError(f"There is no page {page_id} in this project.")
        found: list[_Found] = []
        for path, document in documents:
            annotations = _annotations_in(document)
            if not annotations:
                raise AnnotationFileError(f"{path.name} holds no annotations (an annotation page, a list of "
                                          "annotations or a single one was expected); nothing was imported.")
            for number, annotation in enumerate(annotations, start=1):
                label = f"{path.name}, annotation {annotation.get('id') or annotation.get('@id') or number}"
                found += _placed(annotation, finder, forced, default_category, label, report)
        _store(session, found, creator, report)
    return report


def _read(path: Path) -> Any:
    try:
        return json.loads(read_plain_file(path, MAX_FILE_BYTES, "a Web Annotation file"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AnnotationFileError(f"{path.name} is not JSON ({error}); nothing was imported.") from None


def _annotations_in(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [item for entry in document for item in _annotations_in(entry)]
    if not isinstance(document, dict):
        return []
    kind = _type(document)
    if kind == "annotation":
        painting = "painting" in str(document.get("motivation", "")).lower()
        return [] if painting else [document]  # a manifest's images are annotations too
    found: list[dict[str, Any]] = []
    for key in ("items", "resources", "first", "annotations", "otherContent"):
        value = document.get(key)
        if isinstance(value, (list, dict)):
            found += _annotations_in(value)
    return found


def _type(entry: dict[str, Any]) -> str:
    kind = entry.get("type", entry.get("@type", ""))
    kinds = kind if isinstance(kind, list) else [kind]
    return next((k.split(":")[-1].lower() for k in kinds if isinstance(k, str)), "")


def _placed(annotation: dict[str, Any], finder: CanvasFinder, forced: PageCanvas | None, default_category: str,
            label: str, report: WebAnnotationImport) -> list[_Found]:
    category, text, comments, extra_tags = _bodies(annotation)
    report.comments_not_kept += comments
    targets = annotation.get("target", annotation.get("on"))
    targets = targets if isinstance(targets, list) else [targets]
    placed = []
    for target in targets:
        try:
            source, selector = _source_and_selector(target)
            page = forced
            if page is None:
                page, reason = finder.find(source)
                if page is None:
                    raise SelectorError(reason)
            area = page.to_page(_area(selector, page, source))
            checked = checked_area(area, page.image_width, page.image_height)
        except (SelectorError, GeometryError) as error:
            report.refuse(f"{label}: {error}")
            continue
        if checked.notes or extra_tags:
            report.corrected.append(f"{label}: " + "; ".join(
                checked.notes + ([f"tags after the first ({', '.join(extra_tags)}) were not kept"] if extra_tags
                                 else [])))
        shape = _union_of(checked.parts, None, (0, 0, 0, 0), page)
        placed.append(_Found(page, shape, checked.parts, category or default_category, text, label,
                             _creator(annotation)))
    return placed


def _bodies(annotation: dict[str, Any]) -> tuple[str, str | None, int, list[str]]:
    bodies = annotation.get("body", annotation.get("resource", []))
    bodies = bodies if isinstance(bodies, list) else [bodies]
    motivation = _term(annotation.get("motivation"))
    tags: list[str] = []
    texts: list[str] = []
    comments = 0
    for body in bodies:
        value = _value(body)
        if not value:
            continue
        purpose = _term(body.get("purpose")) if isinstance(body, dict) and body.get("purpose") else motivation
        if purpose in _TAGS:
            tags.append(value)
        elif purpose in _TEXTS:
            texts.append(value)
        else:
            comments += 1
    return (tags[0] if tags else ""), ("\n".join(texts) if texts else None), comments, tags[1:]


def _term(value: Any) -> str:
    """A motivation or purpose as one plain word: the first of a list, without its ``oa:``/``sc:`` prefix."""
    value = value[0] if isinstance(value, list) and value else value
    return value.split(":")[-1].lower() if isinstance(value, str) else ""


def _value(body: Any) -> str:
    if isinstance(body, str):
        return ""  # a link to a resource elsewhere, not a text
    if not isinstance(body, dict):
        return ""
    value = body.get("value", body.get("chars", ""))
    if not isinstance(value, str):
        return ""
    if "html" in str(body.get("format", "")).lower() or re.search(r"</?(p|br|span|div|b|i|em|strong)\b", value):
        value = html.unescape(re.sub(r"<br\s*/?>|</p>", "\n", value))
        value = re.sub(r"<[^>]+>", "", value)
    return value.strip()


def _creator(annotation: dict[str, Any]) -> str:
    creator = annotation.get("creator")
    creator = creator[0] if isinstance(creator, list) and creator else creator
    if isinstance(creator, dict):
        creator = creator.get("name", creator.get("nickname", creator.get("id", "")))
    return creator.strip()[:200] if isinstance(creator, str) else ""


def _source_and_selector(target: Any) -> tuple[str, Any]:
    if isinstance(target, str):
        source, _, fragment = target.partition("#")
        if not fragment:
            raise SelectorError(f"it targets the whole canvas {source}, not an area of it")
        return source, {"type": "FragmentSelector", "value": fragment}
    if not isinstance(target, dict):
        raise SelectorError("it has no target")
    source = target.get("source", target.get("full", target.get("id", target.get("@id", ""))))
    if isinstance(source, dict):
        source = source.get("id", source.get("@id", ""))
    if not isinstance(source, str):
        raise SelectorError("its target names no canvas")
    selector = target.get("selector")
    if selector is None:
        source, _, fragment = source.partition("#")
        if not fragment:
            raise SelectorError(f"it targets the whole canvas {source}, not an area of it")
        selector = {"type": "FragmentSelector", "value": fragment}
    return source, selector


def _area(selector: Any, page: PageCanvas, source: str) -> BaseGeometry:
    """The area a selector (or list of alternatives, or ``oa:Choice``) means, in canvas coordinates."""
    options = selector if isinstance(selector, list) else [selector]
    flat: list[dict[str, Any]] = []
    for option in options:
        if isinstance(option, dict) and _type(option) == "choice":
            flat += [item for key in ("item", "default") if isinstance(item := option.get(key), dict)]
        elif isinstance(option, dict):
            flat.append(option)
    svg = next((option for option in flat if _type(option) == "svgselector"), None)
    if svg is not None:
        value = svg.get("value", svg.get("chars", ""))
        return read_svg(value if isinstance(value, str) else "")
    fragment = next((option for option in flat if _type(option) == "fragmentselector"), None)
    if fragment is not None:
        return read_fragment(str(fragment.get("value", "")), page.width, page.height)
    kinds = ", ".join(sorted({str(option.get("type", option.get("@type", "?"))) for option in flat})) or "none"
    raise SelectorError(f"its selector ({kinds}) gives no area on {source}: a point or a part of a text is "
                        "not a shape")


def _store(session: Any, found: list[_Found], creator: str, report: WebAnnotationImport) -> None:
    pages = {item.page.image_id: item.page for item in found}
    rows: dict[tuple[int, int], list[Annotation]] = {}
    if pages:
        for row in session.scalars(select(Annotation).where(Annotation.image_id.in_(pages))):
            rows.setdefault((row.image_id, row.category_id), []).append(row)
    shapes: dict[tuple[int, int], list[BaseGeometry]] = {}  # traced when first compared (masks cost a tracing)
    for item in found:
        category, created = get_or_create_category(session, item.category)
        if created:
            report.categories_created.append(category.name)
        key = (item.page.image_id, category.id)
        if key not in shapes:
            shapes[key] = [_union_of(row.polygons, row.rle, (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h),
                                     pages[row.image_id]) for row in rows.get(key, [])]
        if any(_iou(item.area, other) >= SAME_AREA_IOU for other in shapes[key]):
            report.already += 1
            continue
        shapes[key].append(item.area)
        image = session.get(Image, item.page.image_id)
        geometry = Geometry(bbox=_box(item.area)) if is_rectangle(item.area) else Geometry(polygons=item.parts)
        session.add(Annotation(image_id=image.id, category_id=category.id, status=AnnotationStatus.ACCEPTED,
                               creator=item.creator or creator, source_kind=SourceKind.IMPORT,
                               source_model="W3C Web Annotation", text=item.text, **shape_fields(image, geometry)))
        report.added += 1
        report.image_ids.add(image.id)


def _iou(first: BaseGeometry, second: BaseGeometry) -> float:
    if not first.intersects(second):
        return 0.0
    union = first.union(second).area
    return first.intersection(second).area / union if union > 0 else 0.0


def _box(area: BaseGeometry) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = area.bounds
    return (x0, y0, x1 - x0, y1 - y0)


def _union_of(polygons: list[dict[str, Any]] | None, rle: dict[str, Any] | None,
              box: tuple[float, float, float, float], page: PageCanvas) -> BaseGeometry:
    return unary_union(parts_of(polygons, rle, box, page.image_width, page.image_height))
