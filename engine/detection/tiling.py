"""Tiling a large page for a detector that sees images at a fixed scale, and merging what the tiles found.

Grounding DINO resizes an image so that its shorter side is 800 px (its longer at most 1333): a 2577×3633
scan shrinks 3×, and a small stamp or initial shrinks below what the model can see. With tiling, the model
also looks at overlapping parts of the page, their boxes mapped back to page pixels and merged with those of
the whole page: boxes of one phrase that overlap are one object (class-aware NMS), and a box cut by a tile's
inner edge is joined with its continuation in the neighbouring tile.

``Tiling.ON`` uses few views, each at most the model's input (800 × 1333, either way round), at the largest scale
where at most ``TILE_VIEWS`` of them hold no more model pixels than ``TILE_BUDGET`` views of the whole page: a tiled
run costs about three untiled ones (on that scan two views at 1.33× the whole page's scale). ``Tiling.FINE`` looks
at 800-px squares at the page's own scale (every small mark seen at full size; 24 squares on that scan, some 18×).
Either way the tiles cover only the page's content (``engine.detection.content``: not the scanner's background
or blank margins), so the same budget buys a larger scale; the whole page is always seen as well.

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
    ON = "on"  # a few views as large as the model's input allows
    FINE = "fine"  # squares at the page's own scale: slow


AUTO_FACTOR = 1.5
OVERLAP = 0.2  # of a tile's side: an object smaller than this is whole in at least one tile
# Tiling.ON's views: at most TILE_VIEWS of them, holding at most TILE_BUDGET whole-page views' worth of model
# pixels. A view costs about what its pixels cost (on the SBB scan three views of 0.85 MP took 3 × 11.6 s beside the
# whole page's 0.9 MP in 11.7 s): three views made a tiled run 3.8–4.02 untiled ones, two make it about three —
# and two views can be nearly as close (their overlap is smaller).
TILE_VIEWS = 2
TILE_BUDGET = 2.75
MIN_GAIN = 1.25  # large views closer than this to the whole page's scale would see nothing new


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


def plan_views(width: int, height: int, model_side: int, tiling: Tiling,
               model_long_side: int | None = None, content: Box | None = None) -> list[View]:
    """The whole page, then (when tiling) parts of ``content`` (the part of the page holding marks; ``None``: all
    of it): ``Tiling.FINE`` overlapping squares of ``model_side`` page pixels (seen at the page's own scale), else
    at most ``TILE_VIEWS`` views shaped as the model's largest input (``model_side`` × ``model_long_side``), at the
    largest scale where they hold no more model pixels than ``TILE_BUDGET`` views of the whole page. A view larger
    than the content stays its planned size where the page allows (the model sees it at the planned scale)."""
    views: list[View] = [WholePage((0.0, 0.0, float(width), float(height)))]
    if not wants_tiles(width, height, model_side, tiling):
        return views
    left, top, right, bottom = (int(v) for v in content) if content is not None else (0, 0, width, height)
    across, down = right - left, bottom - top
    if across <= 0 or down <= 0:
        return views  # nothing on the page but paper: the whole page is enough
    long = model_long_side or model_side
    if tiling is Tiling.FINE:
        boxes = [(x0, y0, model_side, model_side) for y0 in tile_starts(down, model_side)
                 for x0 in tile_starts(across, model_side)]
    else:
        whole = min(model_side / min(width, height), long / max(width, height))
        boxes = _large_views((across, down), (width, height), model_side, long,
                             TILE_BUDGET * (width * whole) * (height * whole), whole)
    placed = [(_placed(left + x0, w, width), _placed(top + y0, h, height)) for x0, y0, w, h in boxes]
    return views + [View((x0, y0, x1, y1)) for (x0, x1), (y0, y1) in placed]


PUBLISHED_INPUT = (800, 1333)  # the published models' shorter and longer sides


def page_views(width: int, height: int, tiling: Tiling) -> int:
    """The views a page of ``width`` × ``height`` is read in, as planned for the published models over the whole
    page (its content is known only once read): a page's share of a detection run's work, for estimates — a
    2577×3633 scan three views with ``Tiling.AUTO``, a 1000×800 painting one."""
    return len(plan_views(width, height, PUBLISHED_INPUT[0], tiling, PUBLISHED_INPUT[1]))


def wants_tiles(width: int, height: int, model_side: int, tiling: Tiling) -> bool:
    """Whether a page of ``width`` × ``height`` is read in tiles beside the whole page."""
    wanted = tiling in (Tiling.ON, Tiling.FINE) or (tiling is Tiling.AUTO
                                                    and min(width, height) > AUTO_FACTOR * model_side)
    return wanted and min(width, height) > model_side


def _placed(start: int, size: int, length: int) -> tuple[float, float]:
    """A view's span ``size`` from ``start`` kept within the page's ``length`` (shifted back, not cut, where it
    can be): (start, end)."""
    start = max(0, min(start, length - size))
    return float(start), float(min(start + size, length))


def _large_views(area: tuple[int, int], page: tuple[int, int], short: int, long: int, budget: float,
                 whole: float) -> list[tuple[int, int, int, int]]:
    """At most ``TILE_VIEWS`` views (x0, y0, w, h) covering an ``area`` (width, height) of a ``page`` at the largest
    scale (model pixels per page pixel, at most 1) where they hold, all together, no more than ``budget`` model
    pixels. Each view is at most the model's input (``short`` × ``long``, either way round) and keeps its size
    where the page allows. None where that scale is not ``MIN_GAIN`` above the whole page's (``whole``)."""
    steps = [side for side in range(long, short - 1, -max(1, (long - short) // 8))] or [short]
    scale = 1.0
    while scale >= whole * MIN_GAIN:
        plans = []
        fitted = {math.ceil(length * scale) for length in area}  # a view as long as the area: nothing beyond it
        for side in [*steps, *(side for side in fitted if short <= side <= long)]:
            for across, down in ((short, side), (side, short)):
                w, h = math.ceil(across / scale), math.ceil(down / scale)
                xs, ys = tile_starts(area[0], w), tile_starts(area[1], h)
                seen = len(xs) * len(ys) * min(w, page[0]) * min(h, page[1]) * scale * scale
                if seen <= budget and len(xs) * len(ys) <= TILE_VIEWS:
                    plans.append((seen, [(x0, y0, w, h) for y0 in ys for x0 in xs]))
        if plans:
            return min(plans, key=lambda plan: (plan[0], len(plan[1])))[1]
        scale *= 0.97
    return []


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
