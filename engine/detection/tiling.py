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
from typing import NamedTuple

import numpy as np

Box = tuple[float, float, float, float]


class Tiling(Enum):
    OFF = "off"
    AUTO = "auto"  # on when the page's shorter side is more than 1.5× the model's input
    ON = "on"


AUTO_FACTOR = 1.5
OVERLAP = 0.2  # of a tile's side: an object smaller than this is whole in at least one tile
NEAR_DUPLICATE = 0.9  # IoU: the same box seen twice


@dataclass(frozen=True, slots=True)
class View:
    """A part of the page the model looks at: the whole page, or one tile (page pixels)."""

    box: Box

    @property
    def is_whole_page(self) -> bool:
        return False

    def place(self, corners: np.ndarray) -> np.ndarray:
        """Boxes ``[K, 4]`` given in 0..1 of this view, in page pixels, kept within the view."""
        x0, y0, x1, y1 = self.box
        page = corners.astype(np.float64) * [x1 - x0, y1 - y0, x1 - x0, y1 - y0] + [x0, y0, x0, y0]
        page[:, 0::2] = page[:, 0::2].clip(x0, x1)
        page[:, 1::2] = page[:, 1::2].clip(y0, y1)
        return page

    def to_page(self, box: Box, width: float, height: float) -> Box:
        """A box found in this view's image of ``width``×``height`` pixels, in page pixels."""
        relative = np.array([[box[0] / width, box[1] / height, box[2] / width, box[3] / height]])
        return tuple(float(v) for v in self.place(relative)[0])  # type: ignore[return-value]


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


class Found(NamedTuple):
    """A box found for a phrase. A named tuple, not a dataclass: a loose run makes tens of thousands of
    them on every threshold change, and a tuple is made several times faster."""

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
    # Near-duplicates first (they are many when a run is loose), keeping a tile's cut box and its
    # neighbour's fuller view of the object apart for the joining.
    joined = _join_cut_boxes(_nms(found, NEAR_DUPLICATE), inner_edges, edge)
    return sorted(_nms(joined, iou_threshold, drop_inside=True), key=lambda f: f.score, reverse=True)


def _nms(found: list[Found], iou_threshold: float, *, drop_inside: bool = False) -> list[Found]:
    """Greedy per-phrase non-maximum suppression with array operations: an untrained or very loose run
    can pass thousands of boxes, which pairwise Python loops would take minutes over. ``drop_inside``
    also drops a weaker box lying mostly (90 %) inside a stronger one: a tile's partial view of an object
    the whole page saw entire."""
    if len(found) < 2:
        return list(found)
    boxes = np.array([f.box for f in found], dtype=np.float64)
    scores = np.array([f.score for f in found])
    phrases = np.array([f.phrase for f in found])
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    kept: list[int] = []
    for phrase in np.unique(phrases):
        order = np.flatnonzero(phrases == phrase)
        order = order[np.argsort(-scores[order], kind="stable")]
        while len(order):
            best, rest = order[0], order[1:]
            kept.append(int(best))
            width = (np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])).clip(0)
            height = (np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])).clip(0)
            inter = width * height
            union = areas[best] + areas[rest] - inter
            overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
            suppressed = overlap >= iou_threshold
            if drop_inside:
                suppressed |= (areas[rest] > 0) & (inter >= 0.9 * areas[rest])
            order = rest[~suppressed]
    return [found[i] for i in sorted(kept)]


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
    """Boxes of one phrase that continue each other across a tile's inner edge become one box (their
    union, the best score); chains of them too. Only boxes touching an inner edge are looked at, each
    against all boxes at once."""
    xs, ys = edges
    if len(found) < 2 or not (xs or ys):
        return list(found)
    boxes = np.array([f.box for f in found], dtype=np.float64)
    phrases = np.array([f.phrase for f in found])
    parent = list(range(len(found)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for axis, lines in ((0, xs), (1, ys)):
        low, high = boxes[:, axis], boxes[:, axis + 2]  # along the axis the edge cuts
        across_low, across_high = boxes[:, 1 - axis], boxes[:, 3 - axis]  # along the edge
        for line in lines:
            # Boxes ending at the line, and boxes of the same phrase that start before the line ends
            # them, reach past it, and line up with them along the edge.
            for i in np.flatnonzero(np.abs(high - line) <= edge):
                shorter = np.minimum(across_high[i] - across_low[i], across_high - across_low)
                shared = (np.minimum(across_high[i], across_high) - np.maximum(across_low[i], across_low)).clip(0)
                partners = np.flatnonzero((phrases == phrases[i]) & (low <= line + edge) & (low < high[i])
                                          & (high > high[i]) & (shared >= 0.5 * np.where(shorter > 0, shorter, np.inf)))
                for j in partners:
                    parent[root(int(j))] = root(int(i))
    groups: dict[int, list[int]] = {}
    for index in range(len(found)):
        groups.setdefault(root(index), []).append(index)
    joined = []
    for members in groups.values():
        if len(members) == 1:
            joined.append(found[members[0]])
            continue
        part = boxes[members]
        joined.append(Found((float(part[:, 0].min()), float(part[:, 1].min()), float(part[:, 2].max()),
                             float(part[:, 3].max())), max(found[i].score for i in members), found[members[0]].phrase))
    return joined
