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
    for y0 in tile_starts(height, model_side):
        for x0 in tile_starts(width, model_side):
            views.append(View((float(x0), float(y0), float(min(x0 + model_side, width)),
                               float(min(y0 + model_side, height)))))
    return views


def tile_starts(length: int, side: int, overlap: float = OVERLAP) -> list[int]:
    """Tile origins along one side: evenly spread, each overlapping the next by at least ``overlap``."""
    if length <= side:
        return [0]
    step = side * (1 - overlap)
    count = math.ceil((length - side) / step) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


class Found(NamedTuple):
    """A box found for a phrase (what a merge keeps: few per page)."""

    box: Box  # page pixels
    score: float
    phrase: int  # index of the phrase


@dataclass(frozen=True)
class Candidates:
    """Boxes found before merging, as arrays: a loose run passes tens of thousands of them on every
    threshold change, too many to make one Python object each. ``boxes [N, 4]`` (x0, y0, x1, y1, page
    pixels, float64), ``scores [N]``, ``phrases [N]`` (index of the phrase, int64)."""

    boxes: np.ndarray
    scores: np.ndarray
    phrases: np.ndarray

    @classmethod
    def of(cls, found: list[Found]) -> Candidates:
        return cls(np.array([f.box for f in found], dtype=np.float64).reshape(-1, 4),
                   np.array([f.score for f in found], dtype=np.float64),
                   np.array([f.phrase for f in found], dtype=np.int64))

    @classmethod
    def joined(cls, parts: list[Candidates]) -> Candidates:
        if not parts:
            return cls.of([])
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.phrases for p in parts]))

    def __len__(self) -> int:
        return len(self.scores)

    def found(self) -> list[Found]:
        """Best first."""
        order = np.argsort(-self.scores, kind="stable")
        return [Found(tuple(box), score, phrase)  # type: ignore[arg-type]
                for box, score, phrase in zip(self.boxes[order].tolist(), self.scores[order].tolist(),
                                              self.phrases[order].tolist(), strict=True)]


def iou(a: Box, b: Box) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def merge(candidates: Candidates, views: list[View], *, iou_threshold: float = 0.5,
          edge: float = 4.0) -> list[Found]:
    """One box per object: boxes cut by a tile's inner edge joined with the boxes they continue into,
    then class-aware non-maximum suppression (best score first). Best first."""
    joined = _join_cut_boxes(candidates, _inner_edges(views), edge)
    kept = _nms(joined, iou_threshold, drop_inside=True)
    return Candidates(joined.boxes[kept], joined.scores[kept], joined.phrases[kept]).found()


def _nms(candidates: Candidates, iou_threshold: float, *, drop_inside: bool = False) -> np.ndarray:
    """Indices kept by greedy per-phrase non-maximum suppression, with array operations (a loose run
    passes thousands of boxes). ``drop_inside`` also drops a weaker box lying mostly (90 %) inside a
    stronger one: a tile's partial view of an object the whole page saw entire."""
    boxes, scores, phrases = candidates.boxes, candidates.scores, candidates.phrases
    if len(scores) < 2:
        return np.arange(len(scores))
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
    return np.array(sorted(kept), dtype=np.int64)


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


def _join_cut_boxes(candidates: Candidates, edges: tuple[set[float], set[float]], edge: float) -> Candidates:
    """Boxes of one phrase that continue each other across a tile's inner edge become one box (their
    union, the best score); chains of them too. At each edge, only the boxes ending at it are compared,
    at once, with only the boxes reaching past it."""
    xs, ys = edges
    boxes, scores, phrases = candidates.boxes, candidates.scores, candidates.phrases
    if len(scores) < 2 or not (xs or ys):
        return candidates
    parent = np.arange(len(scores))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for axis, lines in ((0, xs), (1, ys)):
        low, high = boxes[:, axis], boxes[:, axis + 2]  # along the axis the edge cuts
        across_low, across_high = boxes[:, 1 - axis], boxes[:, 3 - axis]  # along the edge
        for line in sorted(lines):
            ending = np.flatnonzero(np.abs(high - line) <= edge)
            reaching = np.flatnonzero((low <= line + edge) & (high > line - edge))
            if not len(ending) or not len(reaching):
                continue
            # A box ending at the line, and one of the same phrase that starts before the line ends it,
            # reaches past it, and lines up with it along the edge.
            e, r = ending[:, None], reaching[None, :]
            shorter = np.minimum(across_high[e] - across_low[e], across_high[r] - across_low[r])
            shared = (np.minimum(across_high[e], across_high[r]) - np.maximum(across_low[e], across_low[r])).clip(0)
            pairs = ((phrases[e] == phrases[r]) & (low[r] < high[e]) & (high[r] > high[e])
                     & (shared >= 0.5 * np.where(shorter > 0, shorter, np.inf)))
            for i, j in zip(*np.nonzero(pairs), strict=True):
                parent[root(int(reaching[j]))] = root(int(ending[i]))
    roots = np.array([root(i) for i in range(len(scores))])
    if (roots == np.arange(len(scores))).all():
        return candidates
    groups, group_of = np.unique(roots, return_inverse=True)
    joined = np.empty((len(groups), 4))
    joined[:, :2] = np.inf
    joined[:, 2:] = -np.inf
    np.minimum.at(joined[:, 0], group_of, boxes[:, 0])
    np.minimum.at(joined[:, 1], group_of, boxes[:, 1])
    np.maximum.at(joined[:, 2], group_of, boxes[:, 2])
    np.maximum.at(joined[:, 3], group_of, boxes[:, 3])
    best = np.full(len(groups), -np.inf)
    np.maximum.at(best, group_of, scores)
    return Candidates(joined, best, phrases[groups])
