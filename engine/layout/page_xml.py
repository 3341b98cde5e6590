"""PAGE XML (PRImA, the 2019-07-15 schema; earlier versions are read too) to and from a ``PageLayout``.

Read: every region of the page, in the file's reading order (regions it does not list follow in document
order), nested regions flattened; text lines with baselines and words; the first ``TextEquiv`` of each
level. Glyphs, styles and alternative images are not kept; the report says so.

Written: ``PcGts/Metadata`` and ``Page`` with ``ReadingOrder`` (one ordered group of all regions),
``TextRegion``/``TextLine``/``Word`` with ``Coords`` (and ``Baseline``, ``TextEquiv`` where known), other
regions as their PAGE element, a category PAGE has no element for as a ``CustomRegion`` of that type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from engine.layout.model import OTHER_REGION_CATEGORIES, TEXT_REGION_CATEGORIES, Line, PageLayout, Region, Word
from engine.layout.xml import LayoutFileError, child, children, descendants, local, page_points, parse, points_of

NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
SCHEMA_LOCATION = f"{NAMESPACE} {NAMESPACE}/pagecontent.xsd"
_REGIONS = {"TextRegion", "CustomRegion", *OTHER_REGION_CATEGORIES}


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
    skipped = 0
    for node in elements:
        points = _coords(node)
        if len(points) < 2:
            skipped += 1
            continue
        layout.regions.append(_region(node, points))
    if skipped:
        layout.notes.append(f"{skipped} region(s) without an outline were left out")
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


def _region(node: etree._Element, points: list[tuple[float, float]]) -> Region:
    name = local(node)
    if name == "TextRegion":
        kind = node.get("type", "paragraph")
        region = Region(kind if kind in TEXT_REGION_CATEGORIES else "other", points, text=_text(node))
        for line_node in children(node, "TextLine"):
            line_points = _coords(line_node)
            if len(line_points) < 2:
                continue
            baseline_node = child(line_node, "Baseline")
            line = Line(line_points, text=_text(line_node),
                        baseline=points_of(baseline_node.get("points")) if baseline_node is not None else None)
            line.words = [Word(_coords(word), _text(word)) for word in children(line_node, "Word")
                          if len(_coords(word)) >= 2]
            region.lines.append(line)
        return region
    if name == "CustomRegion":
        return Region(node.get("type") or "Custom region", points)
    return Region(name, points)


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
    if region.is_text:
        node = etree.SubElement(page, _q("TextRegion"), id=identifier, type=region.kind)
    elif region.kind in OTHER_REGION_CATEGORIES:
        node = etree.SubElement(page, _q(region.kind), id=identifier)
    else:
        node = etree.SubElement(page, _q("CustomRegion"), id=identifier, type=region.kind)
    etree.SubElement(node, _q("Coords"), points=page_points(region.points))
    for line_number, line in enumerate(region.lines, start=1):
        line_id = f"{identifier}_l{line_number}"
        line_node = etree.SubElement(node, _q("TextLine"), id=line_id)
        etree.SubElement(line_node, _q("Coords"), points=page_points(line.points))
        if line.baseline and len(line.baseline) >= 2:
            etree.SubElement(line_node, _q("Baseline"), points=page_points(line.baseline))
        for word_number, word in enumerate(line.words, start=1):
            word_node = etree.SubElement(line_node, _q("Word"), id=f"{line_id}_w{word_number}")
            etree.SubElement(word_node, _q("Coords"), points=page_points(word.points))
            _write_text(word_node, word.text)
        _write_text(line_node, line.text)
    if region.is_text:
        _write_text(node, region.text)


def _write_text(node: etree._Element, text: str | None) -> None:
    if text is not None:
        etree.SubElement(etree.SubElement(node, _q("TextEquiv")), _q("Unicode")).text = text


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
