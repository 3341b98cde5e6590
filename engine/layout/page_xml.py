"""PAGE XML (PRImA, the 2019-07-15 schema; earlier versions are read too) to and from a ``PageLayout``.

Read: every region of the page, in the file's reading order (regions it does not list follow in document
order), nested regions flattened; text lines with baselines and words; the first ``TextEquiv`` of each
level. Glyphs, styles and alternative images are not kept; the report says so.

Written: ``PcGts/Metadata`` and ``Page`` with ``ReadingOrder`` (one ordered group of all regions),
``TextRegion``/``TextLine``/``Word`` with ``Coords`` (and ``Baseline``, ``TextEquiv`` where known), other
regions as their PAGE element, a category PAGE has no element for as a ``CustomRegion`` of that type.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from engine.layout.model import (
    DIRECTIONS,
    OTHER_REGION_CATEGORIES,
    TEXT_REGION_CATEGORIES,
    Line,
    PageLayout,
    Region,
    Word,
)
from engine.layout.xml import (
    PROPOSAL_MARK,
    LayoutFileError,
    ReadingCounts,
    child,
    children,
    descendants,
    lines_of,
    local,
    page_points,
    parse,
    points_of,
)

NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
SCHEMA_LOCATION = f"{NAMESPACE} {NAMESPACE}/pagecontent.xsd"
_REGIONS = {"TextRegion", "CustomRegion", *OTHER_REGION_CATEGORIES}
_STRUCTURE_TYPE = re.compile(r"structure\s*\{[^}]*?\btype:([^;}]+)")
_DIRECTED = {"TextRegion", "TextLine", "Word"}  # the PAGE elements with a readingDirection


def read_page(path: Path) -> PageLayout:
    root = parse(path)
    if local(root) != "PcGts":
        raise LayoutFileError(f"{path.name} is not PAGE XML (its root element is <{local(root)}>, not <PcGts>).")
    page = child(root, "Page")
    if page is None:
        raise LayoutFileError(f"{path.name} has no <Page> element.")
    try:
        width, height = int(page.get("imageWidth", "")), int(page.get("imageHeight", ""))
    except ValueError as error:
        raise LayoutFileError(f"{path.name} does not give the page's size (imageWidth, imageHeight).") from error
    layout = PageLayout(width, height, image_name=page.get("imageFilename", ""))
    elements = [node for node in page.iter() if local(node) in _REGIONS]
    ordered = _reading_order(page)
    rank = {identifier: position for position, identifier in enumerate(ordered)}
    elements.sort(key=lambda node: rank.get(node.get("id", ""), len(rank)))  # stable: the rest in file order
    reading = _Reading()
    for node in elements:
        region = reading.region(node)
        if region is not None:
            layout.regions.append(region)
    layout.notes += reading.notes()
    if any(True for _ in descendants(page, "Glyph")):
        layout.notes.append("glyphs are not kept (words are the finest level)")
    return layout


def _reading_order(page: etree._Element) -> list[str]:
    """Region ids in reading order: indexed references by index, nested groups in place."""
    order = child(page, "ReadingOrder")
    if order is None:
        return []
    found: list[str] = []

    def walk(group: etree._Element) -> None:
        members = [node for node in group if local(node).endswith(("Indexed", "RegionRef", "Group"))]
        if any(node.get("index") is not None for node in members):
            members.sort(key=lambda node: int(node.get("index", "0")))
        for node in members:
            if node.get("regionRef"):
                found.append(node.get("regionRef", ""))
            if local(node) != "RegionRefIndexed" and local(node) != "RegionRef":
                walk(node)

    for group in order:
        walk(group)
    return found


class _Reading(ReadingCounts):
    """One file's regions, lines and words; spaces written as words are not words."""

    def __init__(self) -> None:
        super().__init__("region", "an outline")
        self.spaces = 0

    def region(self, node: etree._Element) -> Region | None:
        name = local(node)
        points = _coords(node)
        if name != "TextRegion":
            kind = (node.get("type") or "Custom region") if name == "CustomRegion" else name
            return self.outlined_region(Region(kind, points, **_element_facts(node)))
        written = _structure_type(node) or node.get("type") or "paragraph"
        kind, label = (written, "") if written in TEXT_REGION_CATEGORIES else ("other", written)
        region = Region(kind, points, text=_text(node), label=label, **_element_facts(node))
        region.lines = lines_of([self._line(line_node) for line_node in children(node, "TextLine")])
        return self.outlined_region(region)

    def _line(self, node: etree._Element) -> Line | None:
        baseline_node = child(node, "Baseline")
        words = []
        for word_node in children(node, "Word"):
            text = _text(word_node)
            if text is not None and not text.strip():
                self.spaces += 1  # a space written as a word (kraken): spaces are between words, not words
                continue
            word_points = _coords(word_node)
            if len(word_points) >= 2:
                words.append(Word(word_points, text, **_element_facts(word_node)))
        points = self.line_outline(_coords(node), words)
        if points is None:
            return None
        return Line(points, words, text=_text(node), **_element_facts(node),
                    baseline=points_of(baseline_node.get("points")) if baseline_node is not None else None)

    def notes(self) -> list[str]:
        spaces = [f"{self.spaces} word(s) holding only spaces were left out (the spaces stay in the lines' text)"]
        return super().notes() + (spaces if self.spaces else [])


def _structure_type(node: etree._Element) -> str:
    """Transkribus's and eScriptorium's own region type: ``custom="structure {type:Main;}"``."""
    found = _STRUCTURE_TYPE.search(node.get("custom") or "")
    return found.group(1).strip() if found else ""


def _element_facts(node: etree._Element) -> dict:
    direction = node.get("readingDirection")
    return {"score": _confidence(node), "proposed": PROPOSAL_MARK in (node.get("custom") or ""),
            "direction": direction if direction in DIRECTIONS else None}


def _confidence(node: etree._Element) -> float | None:
    """The shape's confidence (``Coords/@conf``), else its text's (``TextEquiv/@conf``)."""
    for holder in (child(node, "Coords"), child(node, "TextEquiv")):
        if holder is not None and holder.get("conf"):
            try:
                return float(holder.get("conf", ""))
            except ValueError:
                continue
    return None


def _coords(node: etree._Element) -> list[tuple[float, float]]:
    coords = child(node, "Coords")
    if coords is None:
        return []
    if coords.get("points"):
        return points_of(coords.get("points"))
    return [(float(p.get("x", 0)), float(p.get("y", 0))) for p in children(coords, "Point")]  # PAGE 2010


def _text(node: etree._Element) -> str | None:
    equivalents = list(children(node, "TextEquiv"))
    if not equivalents:
        return None
    equivalents.sort(key=lambda e: int(e.get("index", "0")) if (e.get("index") or "").isdigit() else 0)
    unicode = child(equivalents[0], "Unicode")
    return unicode.text or "" if unicode is not None else None


def write_page(layout: PageLayout, image_name: str, creator: str = "Marginalia") -> bytes:
    """PAGE 2019 for the layout of the image ``image_name`` (as the file should name it)."""
    nsmap = {None: NAMESPACE, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
    root = etree.Element(_q("PcGts"), nsmap=nsmap)
    root.set("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", SCHEMA_LOCATION)
    metadata = etree.SubElement(root, _q("Metadata"))
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    for name, value in (("Creator", creator), ("Created", now), ("LastChange", now)):
        etree.SubElement(metadata, _q(name)).text = value
    page = etree.SubElement(root, _q("Page"), imageFilename=image_name, imageWidth=str(layout.width),
                            imageHeight=str(layout.height))
    if layout.regions:
        group = etree.SubElement(etree.SubElement(page, _q("ReadingOrder")), _q("OrderedGroup"), id="ro_1",
                                 caption="Regions reading order")
        for index in range(len(layout.regions)):
            etree.SubElement(group, _q("RegionRefIndexed"), index=str(index), regionRef=f"r_{index + 1}")
    for index, region in enumerate(layout.regions, start=1):
        _write_region(page, region, f"r_{index}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _write_region(page: etree._Element, region: Region, identifier: str) -> None:
    structure = f"structure {{type:{_custom_value(region.label)};}}" if region.is_text and region.label else ""
    if region.is_text:
        node = _start(page, "TextRegion", identifier, region, structure, type=region.kind)
    elif region.kind in OTHER_REGION_CATEGORIES:
        node = _start(page, region.kind, identifier, region)
    else:
        node = _start(page, "CustomRegion", identifier, region, type=region.kind)
    for line_number, line in enumerate(region.lines, start=1):
        line_id = f"{identifier}_l{line_number}"
        line_node = _start(node, "TextLine", line_id, line)
        if line.baseline and len(line.baseline) >= 2:
            etree.SubElement(line_node, _q("Baseline"), points=page_points(line.baseline))
        for word_number, word in enumerate(line.words, start=1):
            word_node = _start(line_node, "Word", f"{line_id}_w{word_number}", word)
            _write_text(word_node, word.text)
        _write_text(line_node, line.text)
    if region.is_text:
        _write_text(node, region.text)


def _start(parent: etree._Element, name: str, identifier: str, element: Region | Line | Word, *custom: str,
           **attributes: str) -> etree._Element:
    """The element with its id, type, writing direction, proposal mark and outline (with its score)."""
    marks = [part for part in (*custom, PROPOSAL_MARK if element.proposed else "") if part]
    if marks:
        attributes["custom"] = " ".join(marks)
    if element.direction in DIRECTIONS and name != "CustomRegion" and name in _DIRECTED:
        attributes["readingDirection"] = element.direction
    node = etree.SubElement(parent, _q(name), id=identifier, **attributes)
    coords = etree.SubElement(node, _q("Coords"), points=page_points(element.points))
    if element.score is not None:
        coords.set("conf", _conf(element.score))
    return node


def _custom_value(text: str) -> str:
    """A value inside PAGE's ``custom`` attribute, whose syntax has no escapes: its separators replaced."""
    return "".join(" " if c in "{};:" else c for c in text).strip()


def _conf(score: float) -> str:
    return f"{min(1.0, max(0.0, score)):.4g}"


def _write_text(node: etree._Element, text: str | None) -> None:
    if text is not None:
        etree.SubElement(etree.SubElement(node, _q("TextEquiv")), _q("Unicode")).text = text


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
