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

from engine.layout.model import TEXT_REGION_CATEGORIES, Line, PageLayout, Points, Region, Word, bounds, kind_of_category
from engine.layout.xml import LayoutFileError, child, children, descendants, local, number, parse, points_of

NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA_LOCATION = f"{NAMESPACE} http://www.loc.gov/alto/v4/alto-4-4.xsd"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_BLOCKS = {"TextBlock", "Illustration", "GraphicalElement"}


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
    tags = {tag.get("ID", ""): tag.get("LABEL", "") for tag in descendants(root, "LayoutTag")}
    blocks = [node for node in page.iter() if local(node) in _BLOCKS]
    rank = {identifier: position for position, identifier in enumerate(_reading_order(root))}
    blocks.sort(key=lambda node: rank.get(node.get("ID", ""), len(rank)))
    for node in blocks:
        points = _outline(node)
        if len(points) < 2:
            continue
        if local(node) == "TextBlock":
            labels = [tags.get(ref, "") for ref in (node.get("TAGREFS") or "").split()]
            kind = next((label for label in labels if label in TEXT_REGION_CATEGORIES), "paragraph")
            layout.regions.append(Region(kind, points, [_line(line) for line in children(node, "TextLine")]))
        elif local(node) == "Illustration":
            layout.regions.append(Region(kind_of_category(node.get("TYPE")) if node.get("TYPE") else "ImageRegion",
                                         points))
        else:
            layout.regions.append(Region("GraphicRegion", points))
    return layout


def _reading_order(root: etree._Element) -> list[str]:
    order = child(root, "ReadingOrder")
    return [] if order is None else [ref.get("REF", "") for ref in descendants(order, "ElementRef")]


def _line(node: etree._Element) -> Line:
    words = [Word(_outline(string), string.get("CONTENT", "")) for string in children(node, "String")]
    hyphen = child(node, "HYP")
    text = " ".join(word.text or "" for word in words) + (hyphen.get("CONTENT", "") if hyphen is not None else "")
    return Line(_outline(node), [w for w in words if len(w.points) >= 2], text=text if words else None,
                baseline=_baseline(node))


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
    kinds = sorted({region.kind for region in layout.regions if region.is_text})
    if kinds:
        tags = etree.SubElement(root, _q("Tags"))
        for kind in kinds:
            etree.SubElement(tags, _q("LayoutTag"), ID=_tag(kind), LABEL=kind)
    page = etree.SubElement(etree.SubElement(root, _q("Layout")), _q("Page"), ID="page_1", PHYSICAL_IMG_NR="1",
                            WIDTH=str(layout.width), HEIGHT=str(layout.height))
    space = etree.SubElement(page, _q("PrintSpace"), HPOS="0", VPOS="0", WIDTH=str(layout.width),
                             HEIGHT=str(layout.height))
    for index, region in enumerate(layout.regions, start=1):
        if region.is_text:
            block = _element(space, "TextBlock", f"block_{index}", region.points, TAGREFS=_tag(region.kind))
            for line_number, line in enumerate(region.lines, start=1):
                _write_line(block, line, f"block_{index}_line_{line_number}")
        else:
            _element(space, "Illustration", f"block_{index}", region.points, TYPE=region.category)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _write_line(block: etree._Element, line: Line, identifier: str) -> None:
    extra = {"BASELINE": " ".join(f"{number(x)},{number(y)}" for x, y in line.baseline)} if line.baseline else {}
    node = _element(block, "TextLine", identifier, line.points, **extra)
    words = line.words or [Word(line.points, line.text or "")]
    for word_number, word in enumerate(words, start=1):
        _element(node, "String", f"{identifier}_string_{word_number}", word.points, CONTENT=word.text or "")


def _element(parent: etree._Element, name: str, identifier: str, points: Points, **attributes: str) -> etree._Element:
    x, y, w, h = bounds(points)
    node = etree.SubElement(parent, _q(name), ID=identifier, HPOS=number(x), VPOS=number(y), WIDTH=number(w),
                            HEIGHT=number(h), **attributes)
    etree.SubElement(etree.SubElement(node, _q("Shape")), _q("Polygon"),
                     POINTS=" ".join(f"{number(px)},{number(py)}" for px, py in points))
    return node


def _tag(kind: str) -> str:
    return "tag_" + "".join(c if c.isalnum() else "_" for c in kind)


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
