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
from engine.layout.model import Line, Points, Region, Word, bounds

# How a proposal nobody reviewed yet is marked: PAGE's ``custom`` and ALTO's tag LABEL, which readers ignore.
PROPOSAL_MARK = "marginalia {status:proposed;}"
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


def around(points: Points) -> Points:
    """The rectangle around the points (an outline for an element a file gave none, from its children)."""
    x, y, w, h = bounds(points)
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


class ReadingCounts:
    """What a reader had to make up or leave out, counted for the import's notes: an element without an
    outline is outlined around its children (lines, words), or left out when it has none."""

    def __init__(self, region_name: str, missing: str) -> None:
        self.region_name, self.missing = region_name, missing  # the format's word for a region, a missing outline
        self.outlined_by_lines = self.left_out = self.lines_left_out = 0

    def outlined_region(self, region: Region) -> Region | None:
        if len(region.points) >= 2:
            return region
        if not region.lines:
            self.left_out += 1
            return None
        region.points = around([point for line in region.lines for point in line.points])
        self.outlined_by_lines += 1
        return region

    def line_outline(self, points: Points, words: list[Word]) -> Points | None:
        if len(points) >= 2:
            return points
        if not words:
            self.lines_left_out += 1
            return None
        return around([point for word in words for point in word.points])

    def notes(self) -> list[str]:
        notes = []
        if self.outlined_by_lines:
            notes.append(f"{self.outlined_by_lines} {self.region_name}(s) without {self.missing} were outlined around "
                         "their lines")
        if self.left_out:
            notes.append(f"{self.left_out} {self.region_name}(s) without {self.missing} or lines were left out")
        if self.lines_left_out:
            notes.append(f"{self.lines_left_out} line(s) without {self.missing} or words were left out")
        return notes


def lines_of(lines: list[Line | None]) -> list[Line]:
    return [line for line in lines if line is not None]
