"""A page's layout as the heritage formats see it: regions, text lines, words, in reading order.

PAGE XML and ALTO both describe a page as regions (blocks) holding text lines holding words, each with an
outline in page pixels and, when someone transcribed it, its text. This is that structure, independent of
either format and of the project store: the readers produce it, the writers consume it, and
``engine.layout.store`` maps it to annotations with parent links.

Points are ``(x, y)`` page pixels (floats; PAGE writes them rounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Points = list[tuple[float, float]]

# PAGE's text region types (TextTypeSimpleType), each with the category its regions go in.
TEXT_REGION_CATEGORIES = {
    "paragraph": "Paragraph", "heading": "Heading", "caption": "Caption", "header": "Running header",
    "footer": "Running footer", "page-number": "Page number", "drop-capital": "Drop capital", "credit": "Credit",
    "floating": "Floating text", "signature-mark": "Signature mark", "catch-word": "Catchword",
    "marginalia": "Marginal note", "footnote": "Footnote", "footnote-continued": "Footnote (continued)",
    "endnote": "Endnote", "TOC-entry": "Table of contents entry", "list-label": "List label",
    "other": "Other text",
}
# PAGE's other region elements, each with the category its regions go in.
OTHER_REGION_CATEGORIES = {
    "ImageRegion": "Illustration", "GraphicRegion": "Graphic", "LineDrawingRegion": "Line drawing",
    "SeparatorRegion": "Separator", "TableRegion": "Table", "ChartRegion": "Chart", "MapRegion": "Map",
    "MathsRegion": "Formula", "ChemRegion": "Chemical formula", "MusicRegion": "Music notation",
    "AdvertRegion": "Advertisement", "NoiseRegion": "Noise", "UnknownRegion": "Unknown region",
}
TEXT = "Text"  # the parent category of the text levels
LINE = "Line"
WORD = "Word"
STROKES = "Text strokes"  # Hi-SAM's ink mask of a page: not a region, so not written to PAGE or ALTO


# Writing directions, as PAGE names them (``readingDirection``) and as ALTO does (``BASEDIRECTION``).
DIRECTIONS = {"left-to-right": "ltr", "right-to-left": "rtl", "top-to-bottom": "ttb", "bottom-to-top": "btt"}


@dataclass
class Element:
    """What every level carries besides its outline: a model's ``score`` (PAGE ``conf``, ALTO ``WC``), whether
    it is a ``proposed`` shape nobody reviewed yet, and its writing ``direction`` (a key of ``DIRECTIONS``)."""

    score: float | None = field(default=None, kw_only=True)
    proposed: bool = field(default=False, kw_only=True)
    direction: str | None = field(default=None, kw_only=True)


@dataclass
class Word(Element):
    points: Points
    text: str | None = None


@dataclass
class Line(Element):
    points: Points
    words: list[Word] = field(default_factory=list)
    text: str | None = None
    baseline: Points | None = None


@dataclass
class Region(Element):
    """A text region (``kind`` one of ``TEXT_REGION_CATEGORIES``, or ``other`` with the file's own type in
    ``label``: ``Main``, ``Paratext``…), or another region: ``kind`` is then its PAGE element name
    (``ImageRegion``…) or, for ``CustomRegion``, the category it stands for."""

    kind: str
    points: Points
    lines: list[Line] = field(default_factory=list)
    text: str | None = None
    label: str = ""

    @property
    def is_text(self) -> bool:
        return self.kind in TEXT_REGION_CATEGORIES

    @property
    def category(self) -> str:
        if self.is_text:
            return self.label or TEXT_REGION_CATEGORIES[self.kind]
        return OTHER_REGION_CATEGORIES.get(self.kind, self.kind)


@dataclass
class PageLayout:
    """``image_name``: the image file the layout names (PAGE ``imageFilename``, ALTO ``fileName``), if any;
    ``notes``: what a reader left out or changed, for the curator's report."""

    width: int
    height: int
    regions: list[Region] = field(default_factory=list)
    image_name: str = ""
    notes: list[str] = field(default_factory=list)
    proposals_left_out: int = 0  # on export: proposals nobody reviewed yet, not written

    def counts(self) -> tuple[int, int, int]:
        """(regions, lines, words)."""
        lines = [line for region in self.regions for line in region.lines]
        return len(self.regions), len(lines), sum(len(line.words) for line in lines)


def kind_of_category(name: str) -> str:
    """The region kind a category's shapes are written as: a PAGE text type, a PAGE region element, or the
    category's own name (written as a custom region)."""
    for kind, category in TEXT_REGION_CATEGORIES.items():
        if category == name:
            return kind
    for kind, category in OTHER_REGION_CATEGORIES.items():
        if category == name:
            return kind
    return name


def bounds(points: Points) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the points."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
