"""ALTO (Library of Congress; v4.4 written, v2–v4 read) to and from a ``PageLayout``.

Read: ``TextBlock``s (inside ``ComposedBlock``s too) with their ``TextLine``s and ``String``s, each with its
``Shape/Polygon`` or, without one, its HPOS/VPOS/WIDTH/HEIGHT rectangle; ``Illustration`` and
``GraphicalElement`` as other regions. A line's text is its strings' contents joined by spaces (ALTO has
no text of its own for a line). Only pixel coordinates are read: ``mm10`` and ``inch1200`` files are
refused, since converting them needs the scan's resolution, which ALTO does not state.

Written: one ``Page`` with a ``PrintSpace`` covering it, the text regions' PAGE types as ``LayoutTag``s
(so that a heading stays a heading), other regions as ``Illustration``s whose TYPE is their category.
ALTO lines are made of strings: a line without words is written as one string spanning it.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from engine.layout.model import (
    DIRECTIONS,
    TEXT_REGION_CATEGORIES,
    Line,
    PageLayout,
    Points,
    Region,
    Word,
    bounds,
    kind_of_category,
)
from engine.layout.xml import (
    LayoutFileError,
    ReadingCounts,
    child,
    children,
    descendants,
    lines_of,
    local,
    number,
    parse,
    points_of,
)

NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA_LOCATION = f"{NAMESPACE} http://www.loc.gov/alto/v4/alto-4-4.xsd"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_BLOCKS = {"TextBlock", "Illustration", "GraphicalElement"}
_TAGS = {"LayoutTag", "OtherTag", "StructureTag", "RoleTag", "NamedEntityTag"}
_DIRECTION_OF = {short: long for long, short in DIRECTIONS.items()}
# Marginalia's own tags (OtherTag LABELs, which readers ignore): a proposal nobody reviewed yet, and its score.
MARK_PREFIX = "marginalia:"
PROPOSED_LABEL = "marginalia:proposed"
SCORE_LABEL = "marginalia:score="


def read_alto(path: Path) -> PageLayout:
    root = parse(path)
    if local(root) != "alto":
        raise LayoutFileError(f"{path.name} is not ALTO (its root element is <{local(root)}>, not <alto>).")
    description = child(root, "Description")
    unit_node = child(description, "MeasurementUnit") if description is not None else None
    unit = (unit_node.text or "").strip() if unit_node is not None else "pixel"
    if unit != "pixel":
        raise LayoutFileError(f"{path.name} gives its coordinates in {unit}; Marginalia reads ALTO in pixels only "
                              "(converting needs the scan's resolution, which the file does not state).")
    pages = list(descendants(root, "Page"))
    if len(pages) != 1:
        raise LayoutFileError(f"{path.name} describes {len(pages)} pages; import one ALTO file per page.")
    page = pages[0]
    try:
        width, height = round(float(page.get("WIDTH", ""))), round(float(page.get("HEIGHT", "")))
    except ValueError as error:
        raise LayoutFileError(f"{path.name} does not give the page's size (Page WIDTH and HEIGHT), so its "
                              "coordinates cannot be checked against the scan.") from error
    source = description.find(".//{*}fileName") if description is not None else None
    layout = PageLayout(width, height, image_name=(source.text or "").strip() if source is not None else "")
    tags = {tag.get("ID", ""): tag.get("LABEL", "") for tag in root.iter() if local(tag) in _TAGS}
    blocks = [node for node in page.iter() if local(node) in _BLOCKS]
    rank = {identifier: position for position, identifier in enumerate(_reading_order(root))}
    blocks.sort(key=lambda node: rank.get(node.get("ID", ""), len(rank)))
    reading = _Reading(tags)
    for node in blocks:
        region = reading.block(node)
        if region is not None:
            layout.regions.append(region)
    layout.notes += reading.notes()
    return layout


class _Reading(ReadingCounts):
    """One file's blocks, lines and strings; strings of spaces are spaces, not words."""

    def __init__(self, tags: dict[str, str]) -> None:
        super().__init__("block", "coordinates")
        self.tags = tags
        self.spaces = self.unspaced = 0

    def block(self, node: etree._Element) -> Region | None:
        points = _outline(node)
        labels = self._labels(node)
        if local(node) != "TextBlock":
            kind = "GraphicRegion" if local(node) == "GraphicalElement" else (
                kind_of_category(node.get("TYPE")) if node.get("TYPE") else "ImageRegion")
            return self.outlined_region(Region(kind, points, **_marks(labels)))
        named = [label for label in labels if label and not label.startswith(MARK_PREFIX)]
        kind = next((label for label in named if label in TEXT_REGION_CATEGORIES), "")
        label = "" if kind else next(iter(named), "")
        region = Region(kind or ("other" if label else "paragraph"), points, label=label, **_marks(labels),
                        direction=_direction(node))
        region.lines = lines_of([self._line(line) for line in children(node, "TextLine")])
        return self.outlined_region(region)

    def _labels(self, node: etree._Element) -> list[str]:
        return [self.tags.get(ref, "") for ref in (node.get("TAGREFS") or "").split()]

    def _line(self, node: etree._Element) -> Line | None:
        """Its text as ALTO readers build it: strings' contents, a space for each ``SP``, the ``HYP``."""
        words, pieces = [], []
        for item in node:
            name = local(item)
            if name == "String":
                content = item.get("CONTENT", "")
                pieces.append(content)
                if not content.strip():
                    self.spaces += 1
                    continue
                points = _outline(item)
                if len(points) >= 2:
                    marks = _marks(self._labels(item))
                    confidence = _word_confidence(item)
                    marks["score"] = confidence if confidence is not None else marks["score"]
                    words.append(Word(points, content, direction=_direction(item), **marks))
            elif name == "SP":
                pieces.append(" ")
            elif name == "HYP":
                pieces.append(item.get("CONTENT", ""))
        strings = sum(1 for item in node if local(item) == "String")
        if len(words) > 1 and len(words) == strings and not any(local(item) == "SP" for item in node):
            # Files that separate words by nothing at all (older Marginalia wrote them): read as words.
            self.unspaced += 1
            hyphen = child(node, "HYP")
            pieces = [" ".join(item.get("CONTENT", "") for item in node if local(item) == "String"),
                      hyphen.get("CONTENT", "") if hyphen is not None else ""]
        points = self.line_outline(_outline(node), words)
        if points is None:
            return None
        return Line(points, words, text="".join(pieces) if strings else None, baseline=_baseline(node),
                    direction=_direction(node), **_marks(self._labels(node)))

    def notes(self) -> list[str]:
        notes = super().notes()
        if self.spaces:
            notes.append(f"{self.spaces} string(s) holding only spaces were read as spaces, not words")
        if self.unspaced:
            notes.append(f"{self.unspaced} line(s) had no <SP/> between their strings: read with a space between "
                         "each two (ALTO readers would run the words together)")
        return notes


def _marks(labels: list[str]) -> dict:
    """A proposal's mark and score, from the tags Marginalia writes for them."""
    score = None
    for label in labels:
        if label.startswith(SCORE_LABEL):
            try:
                score = float(label[len(SCORE_LABEL):])
            except ValueError:
                continue
    return {"proposed": PROPOSED_LABEL in labels, "score": score}


def _word_confidence(node: etree._Element) -> float | None:
    try:
        return float(node.get("WC", ""))
    except ValueError:
        return None


def _direction(node: etree._Element) -> str | None:
    return _DIRECTION_OF.get(node.get("BASEDIRECTION", ""))


def _reading_order(root: etree._Element) -> list[str]:
    order = child(root, "ReadingOrder")
    return [] if order is None else [ref.get("REF", "") for ref in descendants(order, "ElementRef")]


def _outline(node: etree._Element) -> Points:
    shape = child(node, "Shape")
    polygon = child(shape, "Polygon") if shape is not None else None
    if polygon is not None:
        points = points_of(polygon.get("POINTS"))
        if len(points) >= 2:
            return points
    try:
        x, y = float(node.get("HPOS", "")), float(node.get("VPOS", ""))
        w, h = float(node.get("WIDTH", "")), float(node.get("HEIGHT", ""))
    except ValueError:
        return []
    if w < 0 or h < 0:  # a box turned inside out: nothing tells where it was meant to be
        raise LayoutFileError(f"<{local(node)} ID=\"{node.get('ID', '')}\"> has a negative WIDTH or HEIGHT "
                              f"({node.get('WIDTH')}×{node.get('HEIGHT')}): the file looks damaged")
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _baseline(node: etree._Element) -> Points | None:
    value = (node.get("BASELINE") or "").strip()
    if not value:
        return None
    try:  # ALTO 2/3: one y, along the line's width
        y = float(value)
    except ValueError:
        return points_of(value) or None  # ALTO 4: points
    try:
        x, w = float(node.get("HPOS", "")), float(node.get("WIDTH", ""))
    except ValueError:
        return None
    return [(x, y), (x + w, y)]


def write_alto(layout: PageLayout, image_name: str) -> bytes:
    root = etree.Element(_q("alto"), nsmap={None: NAMESPACE, "xlink": XLINK, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
    root.set("SCHEMAVERSION", "4.4")
    description = etree.SubElement(root, _q("Description"))
    etree.SubElement(description, _q("MeasurementUnit")).text = "pixel"
    etree.SubElement(etree.SubElement(description, _q("sourceImageInformation")), _q("fileName")).text = image_name
    tags = _Tags(etree.SubElement(root, _q("Tags")))
    differing: list[str] = []
    page = etree.SubElement(etree.SubElement(root, _q("Layout")), _q("Page"), ID="page_1", PHYSICAL_IMG_NR="1",
                            WIDTH=str(layout.width), HEIGHT=str(layout.height))
    space = etree.SubElement(page, _q("PrintSpace"), HPOS="0", VPOS="0", WIDTH=str(layout.width),
                             HEIGHT=str(layout.height))
    for index, region in enumerate(layout.regions, start=1):
        if region.is_text:
            block = _element(space, "TextBlock", f"block_{index}", region.points,
                             TAGREFS=tags.refs(region, region.label or region.kind), **_directed(region))
            for line_number, line in enumerate(region.lines, start=1):
                _write_line(block, line, f"block_{index}_line_{line_number}", tags, differing)
        else:
            refs = tags.refs(region)
            _element(space, "Illustration", f"block_{index}", region.points, TYPE=region.category,
                     **({"TAGREFS": refs} if refs else {}))
    if not len(tags.node):
        root.remove(tags.node)
    if differing:  # ALTO has the strings' text only
        layout.notes.append(f"{len(differing)} line(s) whose text differs from their words' were written with "
                            "their words' text (ALTO holds no text of its own for a line)")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class _Tags:
    """The file's tags, made as elements ask for them: region types (``LayoutTag``), Marginalia's marks for
    proposals and their scores (``OtherTag``)."""

    def __init__(self, node: etree._Element) -> None:
        self.node, self.made = node, set()

    def refs(self, element: Region | Line | Word, layout_label: str = "") -> str:
        wanted = [("LayoutTag", layout_label)] if layout_label else []
        if element.proposed:
            wanted.append(("OtherTag", PROPOSED_LABEL))
            if element.score is not None:
                wanted.append(("OtherTag", f"{SCORE_LABEL}{element.score:.4g}"))
        return " ".join(self._tag(kind, label) for kind, label in wanted)

    def _tag(self, kind: str, label: str) -> str:
        identifier = "tag_" + "".join(c if c.isalnum() else "_" for c in label)
        if identifier not in self.made:
            self.made.add(identifier)
            etree.SubElement(self.node, _q(kind), ID=identifier, LABEL=label)
        return identifier


def _directed(element: Region | Line) -> dict[str, str]:
    return {"BASEDIRECTION": DIRECTIONS[element.direction]} if element.direction in DIRECTIONS else {}


HYPHENS = {"-", "¬", "⸗", "‐", "\u00ad"}  # what a line may end with after its last word (ALTO's HYP)


def spaces_before(line: Line) -> tuple[list[bool], str] | None:
    """Whether the line's text has a space before each of its words (punctuation often is a word of its own,
    with none before it), and the hyphen it ends with after its last word; ``None`` when the words do not
    spell the line's text."""
    if line.text is None:
        return [index > 0 for index in range(len(line.words))], ""
    text, position, spaced = line.text, 0, []
    for index, word in enumerate(line.words):
        start = position
        while position < len(text) and text[position].isspace():
            position += 1
        content = word.text or ""
        if not text.startswith(content, position):
            return None
        spaced.append(index > 0 and position > start)
        position += len(content)
    rest = text[position:].rstrip()
    if not rest or rest in HYPHENS:
        return spaced, rest
    return None


def _write_line(block: etree._Element, line: Line, identifier: str, tags: _Tags, notes: list[str]) -> None:
    extra = {"BASELINE": " ".join(f"{number(x)},{number(y)}" for x, y in line.baseline)} if line.baseline else {}
    refs = tags.refs(line)
    node = _element(block, "TextLine", identifier, line.points, **extra, **_directed(line),
                    **({"TAGREFS": refs} if refs else {}))
    words = line.words or [Word(line.points, line.text or "")]
    found = spaces_before(line) if line.words else ([False], "")
    if found is None:
        notes.append("its words spell other text than its line")
        found = [index > 0 for index in range(len(words))], ""
    spaced, hyphen = found
    for word_number, word in enumerate(words, start=1):
        if spaced[word_number - 1]:  # ALTO readers build a line's text from its strings and the spaces between
            before = bounds(words[word_number - 2].points)
            x, y, w, h = bounds(word.points)
            gap = max(0.0, x - (before[0] + before[2]))
            etree.SubElement(node, _q("SP"), HPOS=number(before[0] + before[2]), VPOS=number(min(y, before[1])),
                             WIDTH=number(gap))
        attributes = {"CONTENT": word.text or ""}
        if word.score is not None:
            attributes["WC"] = f"{min(1.0, max(0.0, word.score)):.4g}"
        refs = tags.refs(word)
        if refs:
            attributes["TAGREFS"] = refs
        _element(node, "String", f"{identifier}_string_{word_number}", word.points, **attributes)
    if hyphen:
        etree.SubElement(node, _q("HYP"), CONTENT=hyphen)


def _element(parent: etree._Element, name: str, identifier: str, points: Points, **attributes: str) -> etree._Element:
    x, y, w, h = bounds(points)
    node = etree.SubElement(parent, _q(name), ID=identifier, HPOS=number(x), VPOS=number(y), WIDTH=number(w),
                            HEIGHT=number(h), **attributes)
    etree.SubElement(etree.SubElement(node, _q("Shape")), _q("Polygon"),
                     POINTS=" ".join(f"{number(px)},{number(py)}" for px, py in points))
    return node


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
