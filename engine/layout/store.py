"""A page's layout in the project: annotations with parent links (region ⊃ line ⊃ word).

Importing puts each region, line and word in as an accepted annotation of its category (Text ▸ Paragraph,
Heading…, Text ▸ Line, Text ▸ Word; other regions in their own categories), with its parent, its place in
reading order among its siblings, its transcription and a line's baseline. Exporting reads the tree back:
the page's top-level shapes are its regions, their children its lines, theirs its words; any other shape
on the page (an ornament drawn with SAM, say) is a region of its category's kind.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import Polygon
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.annotations import Geometry, shape_fields
from engine.categories import find_category, get_or_create_category
from engine.coco.geometry import GeometryError
from engine.errors import MarginaliaError
from engine.layout.model import (
    LINE,
    STROKES,
    TEXT,
    TEXT_REGION_CATEGORIES,
    WORD,
    Line,
    PageLayout,
    Points,
    Region,
    Word,
    kind_of_category,
)
from engine.layout.shapes import hull, parts_of, writable
from engine.outlines import checked_outline
from engine.project import Project
from engine.store.schema import Annotation, Category, Image
from engine.store.types import AnnotationStatus, SourceKind


class LayoutMismatchError(MarginaliaError):
    """A layout file that does not describe the page it would be put on."""


@dataclass(frozen=True)
class LayoutImport:
    image_id: int
    regions: int
    lines: int
    words: int
    replaced: int = 0
    notes: list[str] = field(default_factory=list)  # outlines mended or left out


def import_layout(project: Project, image_id: int, layout: PageLayout, *, source: str, creator: str = "",
                  replace: bool = False) -> LayoutImport:
    """Put ``layout`` on the page as accepted annotations (one transaction). ``source`` names the format
    (``"PAGE XML"``, ``"ALTO"``); a page that already holds an import from it is refused unless ``replace``,
    which removes that earlier import first. Every outline is checked against the page
    (:mod:`engine.outlines`): one that no tool could use is left out with what it holds, and said."""
    _check_texts(layout)
    with project.unit_of_work() as session:
        image = session.get_one(Image, image_id)
        _check_size(image, layout)
        earlier = session.scalars(select(Annotation).where(
            Annotation.image_id == image_id, Annotation.source_kind == SourceKind.IMPORT,
            Annotation.source_model == source)).all()
        if earlier and not replace:
            raise LayoutMismatchError(f"{_name(image)} already holds an import from {source} ({len(earlier)} shapes); "
                                      "replace it (--replace) or delete those shapes first.")
        for row in earlier:
            session.delete(row)
        categories = TextCategories(session)
        checks = _OutlineChecks(image.width, image.height)
        stored = Counter[str]()

        def add(category: Category, element: Region | Line | Word, order: int, parent: Annotation | None,
                what: str, holding: str = "", baseline: Points | None = None) -> Annotation | None:
            geometry = checks.geometry(element.points, what, holding)
            if geometry is None:
                return None
            status = AnnotationStatus.PROPOSED if element.proposed else AnnotationStatus.ACCEPTED
            row = Annotation(image_id=image_id, category_id=category.id, status=status, score=element.score,
                             creator=creator, source_kind=SourceKind.IMPORT, source_model=source,
                             parent_id=parent.id if parent is not None else None, reading_order=order,
                             text=element.text, writing_direction=element.direction,
                             baseline=[v for point in baseline for v in point] if baseline else None,
                             **shape_fields(image, geometry))
            session.add(row)
            session.flush()  # its id, for its children
            return row

        for region_order, region in enumerate(layout.regions, start=1):
            words = sum(len(line.words) for line in region.lines)
            region_row = add(categories.region(region), region, region_order - 1, None,
                             f"region {region_order}", _holding(len(region.lines), words))
            if region_row is None:
                continue
            stored["regions"] += 1
            for line_order, line in enumerate(region.lines, start=1):
                line_row = add(categories.line(), line, line_order - 1, region_row,
                               f"line {line_order} of region {region_order}", _holding(0, len(line.words)),
                               line.baseline)
                if line_row is None:
                    continue
                stored["lines"] += 1
                for word_order, word in enumerate(line.words, start=1):
                    if add(categories.word(), word, word_order - 1, line_row,
                           f"word {word_order} of line {line_order} of region {region_order}") is not None:
                        stored["words"] += 1
        return LayoutImport(image_id, stored["regions"], stored["lines"], stored["words"], replaced=len(earlier),
                            notes=checks.notes())


# A page element's transcription longer than this is damage, not text (a dense newspaper page holds ~30,000
# characters in all); such a file would make the project slow to open for every later session.
MAX_TEXT_CHARACTERS = 100_000


def _check_texts(layout: PageLayout) -> None:
    texts = [region.text for region in layout.regions]
    texts += [line.text for region in layout.regions for line in region.lines]
    texts += [word.text for region in layout.regions for line in region.lines for word in line.words]
    longest = max((len(text) for text in texts if text), default=0)
    if longest > MAX_TEXT_CHARACTERS:
        raise LayoutMismatchError(f"The file holds a transcription of {longest:,} characters for one page element, "
                                  f"more than the {MAX_TEXT_CHARACTERS:,} any page holds: it looks damaged. "
                                  "Nothing was imported.")


def _holding(lines: int, words: int) -> str:
    held = [f"{lines} line(s)" if lines else "", f"{words} word(s)" if words else ""]
    return " and ".join(part for part in held if part)


class _OutlineChecks:
    """Each outline of one import checked against the page; what was mended is counted, what was left out
    listed with its reason."""

    LISTED = 5

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.mended = Counter[str]()
        self.left_out: list[str] = []

    def geometry(self, points: Points, what: str, holding: str) -> Geometry | None:
        try:
            checked = checked_outline(points, self.width, self.height)
        except GeometryError as error:
            self.left_out.append(f"{what}{f' with its {holding}' if holding else ''}: {error}")
            return None
        self.mended.update(checked.notes)
        return Geometry(polygons=checked.parts)

    def notes(self) -> list[str]:
        notes = [f"{count} outline(s): {note}" for note, count in self.mended.items()]
        shown = self.left_out[: self.LISTED]
        notes += [f"left out {text}" for text in shown]
        if len(self.left_out) > len(shown):
            notes.append(f"left out {len(self.left_out) - len(shown)} more shape(s) whose outlines no tool could use")
        return notes


def _check_size(image: Image, layout: PageLayout) -> None:
    if (layout.width, layout.height) == (image.width, image.height):
        return
    if (layout.width, layout.height) == (image.height, image.width):
        raise LayoutMismatchError(f"The layout describes a {layout.width}×{layout.height} page, {_name(image)} is "
                                  f"{image.width}×{image.height}: the scan is turned by a quarter relative to the "
                                  "file. Nothing was imported, rather than putting every shape in the wrong place.")
    raise LayoutMismatchError(f"The layout describes a {layout.width}×{layout.height} page, but {_name(image)} is "
                              f"{image.width}×{image.height}: it was made for another scan or another size of it. "
                              "Nothing was imported.")


def _name(image: Image) -> str:
    return image.path.replace("\\", "/").rsplit("/", 1)[-1] + (f" (page {image.page_index + 1})"
                                                                if image.page_index else "")


class TextCategories:
    """The categories of one import, created on first use: text levels under Text."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[str, Category] = {}

    def named(self, name: str, under_text: bool) -> Category:
        if name not in self.known:
            parent = self.named(TEXT, False) if under_text else None
            self.known[name] = get_or_create_category(self.session, name, parent=parent)[0]
        return self.known[name]

    def region(self, region: Region) -> Category:
        return self.named(region.category, region.is_text)

    def line(self) -> Category:
        return self.named(LINE, True)

    def word(self) -> Category:
        return self.named(WORD, True)


def layout_of(project: Project, image_id: int, *, include_proposals: bool = False) -> PageLayout:
    """The page's shapes as a layout: top-level shapes are regions, their children lines, theirs words, in
    reading order (shapes without one after those with one, top to bottom, left to right). A line or word
    whose parent is not exported is wrapped in a region (and line) of its own; a shape in several parts is a
    region per part; holes are reached by a cut; the notes say how many of each."""
    statuses = [AnnotationStatus.ACCEPTED] + ([AnnotationStatus.PROPOSED] if include_proposals else [])
    with project.unit_of_work() as session:
        image = session.get_one(Image, image_id)
        rows = session.scalars(select(Annotation).where(Annotation.image_id == image_id,
                                                        Annotation.status.in_(statuses))).all()
        unreviewed = 0 if include_proposals else session.scalar(select(func.count()).where(
            Annotation.image_id == image_id, Annotation.status == AnnotationStatus.PROPOSED)) or 0
        names = {c.id: c.name for c in session.scalars(select(Category))}
        text_parent = find_category(session, TEXT)
        text_ids = {c.id for c in session.scalars(select(Category).where(
            Category.parent_id == (text_parent.id if text_parent is not None else -1)))}
        layout = PageLayout(image.width, image.height, proposals_left_out=unreviewed)
        present = {row.id for row in rows}
        children: dict[int | None, list[Annotation]] = defaultdict(list)
        for row in rows:
            children[row.parent_id if row.parent_id in present else None].append(row)
        shapes = _Shapes(image)
        wrapped = 0
        strokes = [row for row in children[None] if names[row.category_id] == STROKES]
        if strokes:
            layout.notes.append("text stroke masks are not written (the format has no place for them; COCO "
                                "export carries them)")
        for row in _ordered([row for row in children[None] if names[row.category_id] != STROKES]):
            name = names[row.category_id]
            if name == WORD and not children[row.id]:
                points = shapes.one(row)
                word = Word(points, row.text, **_facts(row))
                layout.regions.append(Region("other", points, [Line(points, [word])]))
                wrapped += 1
            elif name == LINE:
                line = _line(row, children, shapes)
                layout.regions.append(Region("other", line.points, [line]))
                wrapped += 1
            elif children[row.id] or row.category_id in text_ids or name in TEXT_REGION_CATEGORIES.values():
                kind = kind_of_category(name)
                known = kind in TEXT_REGION_CATEGORIES
                lines = [_line(line, children, shapes) for line in _ordered(children[row.id])]
                for points, held in shapes.regions(row, lines):
                    layout.regions.append(Region(kind if known else "other", points, held, text=row.text,
                                                 label="" if known or name == TEXT else name, **_facts(row)))
            else:
                for points, _ in shapes.regions(row, []):
                    layout.regions.append(Region(kind_of_category(name), points, **_facts(row)))
        if wrapped:
            layout.notes.append(f"{wrapped} line(s) or word(s) without a region were each written in a region of "
                                "their own")
        layout.notes += shapes.notes()
        return layout


def _facts(row: Annotation) -> dict:
    return {"score": row.score, "proposed": row.status == AnnotationStatus.PROPOSED,
            "direction": row.writing_direction}


def _line(row: Annotation, children: dict[int | None, list[Annotation]], shapes: _Shapes) -> Line:
    baseline = row.baseline or []
    words = [Word(shapes.one(word), word.text, **_facts(word)) for word in _ordered(children[row.id])]
    return Line(shapes.one(row), words, text=row.text, **_facts(row),
                baseline=list(zip(baseline[0::2], baseline[1::2], strict=False)) or None)


def _ordered(rows: list[Annotation]) -> list[Annotation]:
    return sorted(rows, key=lambda r: (r.reading_order is None, r.reading_order or 0, r.bbox_y, r.bbox_x, r.id))


class _Shapes:
    """Outlines as the formats hold them, with what that changed counted for the export's summary."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.split = self.holes_cut = self.holes_dropped = self.hulled = 0

    def parts(self, row: Annotation) -> list[Polygon]:
        return parts_of(row.polygons, row.rle, (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h),
                        self.image.width, self.image.height)

    def one(self, row: Annotation) -> Points:
        """A line's or word's one outline: around its parts when it has several (said), its holes cut open."""
        parts = self.parts(row)
        if len(parts) > 1:
            self.hulled += 1
            return hull(parts)
        return self._opened(parts[0])

    def regions(self, row: Annotation, lines: list[Line]) -> list[tuple[Points, list[Line]]]:
        """A region per part of the shape, each with the lines lying mostly in it."""
        parts = self.parts(row)
        if len(parts) > 1:
            self.split += 1
        held: list[list[Line]] = [[] for _ in parts]
        for line in lines:
            outline = Polygon(line.points) if len(line.points) >= 3 else None
            overlaps = [part.intersection(outline).area if outline is not None and outline.is_valid else 0.0
                        for part in parts]
            held[int(np.argmax(overlaps)) if overlaps else 0].append(line)
        return [(self._opened(part), part_lines) for part, part_lines in zip(parts, held, strict=True)]

    def _opened(self, part: Polygon) -> Points:
        written = writable(part)
        self.holes_cut += written.holes_cut
        self.holes_dropped += written.hole_kept_out
        return written.points

    def notes(self) -> list[str]:
        notes = []
        if self.split:
            notes.append(f"{self.split} shape(s) in several parts were written as a region per part")
        if self.holes_cut:
            notes.append(f"{self.holes_cut} hole(s) were written as a cut two pixels wide from the outline (the "
                         "format's outlines have no holes)")
        if self.holes_dropped:
            notes.append(f"{self.holes_dropped} hole(s) could not be reached by a cut and were left out")
        if self.hulled:
            notes.append(f"{self.hulled} line(s) or word(s) in several parts were written as the outline around "
                         "their parts (the format gives each one outline)")
        return notes
