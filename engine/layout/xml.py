"""Reading layout XML safely, whatever the schema version, and the points both formats write.

Files come from other tools and other institutions: the parser never fetches anything from the network,
never expands entities (no "billion laughs", no local files pulled in), and elements are found by their
local name, so PAGE 2010–2019 and ALTO v2–v4 read alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from engine.errors import MarginaliaError
from engine.fileio import read_plain_file
from engine.layout.model import Points

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class LayoutFileError(MarginaliaError):
    """A layout file that cannot be read as what it claims to be."""


# The largest layout file read: a newspaper page with every glyph is some tens of megabytes.
MAX_LAYOUT_BYTES = 512 * 1024 * 1024


def parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                             remove_comments=True)
    data = read_plain_file(path, MAX_LAYOUT_BYTES, "a layout file")
    try:
        return etree.fromstring(data, parser, base_url=str(path))
    except etree.XMLSyntaxError as error:
        raise LayoutFileError(f"{path.name} is not well-formed XML: {error}") from error


def local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if local(child) == name)


def child(element: etree._Element, name: str) -> etree._Element | None:
    return next(children(element, name), None)


def descendants(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (node for node in element.iter() if local(node) == name)


def points_of(text: str | None) -> Points:
    """``"x,y x,y …"`` (PAGE, ALTO 4) or ``"x y x y …"`` (older ALTO): pairs of numbers. Anything else is
    refused rather than read around (skipping one ``NaN`` would pair every later x with a y)."""
    tokens = [token for token in re.split(r"[\s,]+", text or "") if token]
    if any(not _NUMBER.fullmatch(token) for token in tokens) or len(tokens) % 2:
        shown = (text or "").strip()
        raise LayoutFileError(f"the points “{shown[:60]}{'…' if len(shown) > 60 else ''}” are not pairs of numbers")
    numbers = [float(token) for token in tokens]
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def page_points(points: Points) -> str:
    """PAGE's points: non-negative integers, ``"x,y x,y"``."""
    return " ".join(f"{max(0, round(x))},{max(0, round(y))}" for x, y in points)


def number(value: float) -> str:
    """A coordinate as ALTO writes it: an integer when it is one, else two decimals."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.2f}"
