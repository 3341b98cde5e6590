"""Tiling a large page for a detector that sees images at a fixed scale, and merging what the tiles found.

Grounding DINO resizes an image so that its shorter side is 800 px: a 2577×3633 scan shrinks 3×, and a
small stamp or initial shrinks below what the model can see. With tiling, the model also looks at
overlapping squares of the page at its own scale; their boxes are mapped back to page pixels and merged
with those of the whole page: boxes of one phrase that overlap are one object (class-aware NMS), and a box
cut by a tile's inner edge is joined with its continuation in the neighbouring tile.

Boxes are ``(x0, y0, x1, y1)`` in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

Box = tuple[float, float, float, float]


class Tiling(Enum):
    OFF = "off"
    AUTO = "auto"  # on when the page's shorter side is more than 1.5× the model's input
    ON = "on"


AUTO_FACTOR = 1.5
OVERLAP = 0.2  # of a tile's side: an object smaller than this is whole in at least one tile


@dataclass(frozen=True, slots=True)
class View:
    """A part of the page the model looks at: the whole page, or one tile (page pixels)."""

    box: Box

    @property
    def is_whole_page(self) -> bool:
        return False

    def to_page(self, box: Box, width: float, height: float) -> Box:
        """A box found in this view's image of ``width``×``height`` pixels, in page pixels."""
        x0, y0, x1, y1 = self.box
        sx, sy = (x1 - x0) / width, (y1 - y0) / height
        return (x0 + box[0] * sx, y0 + box[1] * sy, x0 + box[2] * sx, y0 + box[3] * sy)


@dataclass(frozen=True, slots=True)
class WholePage(View):
    @property
    def is_whole_page(self) -> bool:
        return True


def plan_views(width: int, height: int, model_side: int, tiling: Tiling) -> list[View]:
    """The whole page, then (when tiling) overlapping squares of ``model_side`` page pixels covering it
    (``model_side``: the model's input shorter side, so that a tile is seen at the page's own scale)."""
    views: list[View] = [WholePage((0.0, 0.0, float(width), float(height)))]
    wanted = tiling is Tiling.ON or (tiling is Tiling.AUTO and min(width, height) > AUTO_FACTOR * model_side)
    if not wanted or min(width, height) <= model_side:
        return views
    for y0 in _starts(height, model_side):
        for x0 in _starts(width, model_side):
            views.append(View((float(x0), float(y0), float(min(x0 + model_side, width)),
                               float(min(y0 + model_side, height)))))
    return views


def _starts(length: int, side: int) -> list[int]:
    """Tile origins along one side: evenly spread, each overlapping the next by at least OVERLAP."""
    if length <= side:
        return [0]
    step = side * (1 - OVERLAP)
    count = math.ceil((length - side) / step) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Found:
    box: Box  # page pixels
    score: float
    phrase: int  # index of the phrase


def iou(a: Box, b: Box) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def merge(found: list[Found], views: list[View], *, iou_threshold: float = 0.5, edge: float = 4.0) -> list[Found]:
    """One box per object: boxes cut by a tile's inner edge joined with the boxes they continue into,
    then class-aware non-maximum suppression (best score first). Best first."""
    inner_edges = _inner_edges(views)
    joined = _join_cut_boxes(found, inner_edges, edge)
    kept: list[Found] = []
    for candidate in sorted(joined, key=lambda f: f.score, reverse=True):
        if all(other.phrase != candidate.phrase or (iou(other.box, candidate.box) < iou_threshold
                                                    and not _inside(candidate.box, other.box))
               for other in kept):
            kept.append(candidate)
    return kept


def _inside(small: Box, large: Box, slack: float = 0.9) -> bool:
    """Most of ``small`` lies in ``large`` (a tile's partial view of an object the whole page saw entire)."""
    inter = _area((max(small[0], large[0]), max(small[1], large[1]), min(small[2], large[2]),
                   min(small[3], large[3])))
    return _area(small) > 0 and inter >= slack * _area(small)


def _inner_edges(views: list[View]) -> tuple[set[float], set[float]]:
    """x and y positions where a tile ends inside the page (a box touching one may be cut)."""
    pages = [v for v in views if v.is_whole_page]
    if not pages:
        return set(), set()
    page = pages[0].box
    xs, ys = set(), set()
    for view in views:
        if view.is_whole_page:
            continue
        x0, y0, x1, y1 = view.box
        xs.update(x for x in (x0, x1) if page[0] < x < page[2])
        ys.update(y for y in (y0, y1) if page[1] < y < page[3])
    return xs, ys


def _join_cut_boxes(found: list[Found], edges: tuple[set[float], set[float]], edge: float) -> list[Found]:
    xs, ys = edges
    boxes = list(found)
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(boxes):
            if not _touches(a.box, xs, ys, edge):
                continue
            for j, b in enumerate(boxes):
                if j == i or b.phrase != a.phrase or not _continues(a.box, b.box, xs, ys, edge):
                    continue
                union = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]),
                         max(a.box[3], b.box[3]))
                boxes = [f for k, f in enumerate(boxes) if k not in (i, j)]
                boxes.append(Found(union, max(a.score, b.score), a.phrase))
                changed = True
                break
            if changed:
                break
    return boxes


def _touches(box: Box, xs: set[float], ys: set[float], edge: float) -> bool:
    return any(abs(box[0] - x) <= edge or abs(box[2] - x) <= edge for x in xs) or \
        any(abs(box[1] - y) <= edge or abs(box[3] - y) <= edge for y in ys)


def _continues(a: Box, b: Box, xs: set[float], ys: set[float], edge: float) -> bool:
    """``b`` carries ``a`` on past a tile edge: they meet or overlap across that edge and line up along it."""
    for x in xs:
        for left, right in ((a, b), (b, a)):
            if abs(left[2] - x) <= edge and right[0] <= x + edge and right[0] < left[2] and \
                    _overlap_1d(left[1], left[3], right[1], right[3]) >= 0.5:
                return True
    for y in ys:
        for top, bottom in ((a, b), (b, a)):
            if abs(top[3] - y) <= edge and bottom[1] <= y + edge and bottom[1] < top[3] and \
                    _overlap_1d(top[0], top[2], bottom[0], bottom[2]) >= 0.5:
                return True
    return False


def _overlap_1d(a0: float, a1: float, b0: float, b1: float) -> float:
    """How much two spans overlap, as a share of the shorter."""
    shorter = min(a1 - a0, b1 - b0)
    return max(0.0, min(a1, b1) - max(a0, b0)) / shorter if shorter > 0 else 0.0
