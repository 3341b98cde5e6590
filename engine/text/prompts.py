"""Where to prompt Hi-SAM's H-Decoder in a window, and how many times.

The authors sample hundreds of random stroke pixels a window and decode them all, so a line of text is
decoded dozens of times. Here the prompts come from the stroke mask's structure and are decoded in rounds:

- the window is cut into cells about a printed line high; each cell holding ink gives one candidate, the
  stroke pixel nearest the cell's centre (a cell with a speck of a few pixels gives none);
- each round takes the candidates farthest from every point decoded so far (so a round spreads over the
  window's lines instead of piling onto one), last those in pieces of ink where a point gave no line (ink closer
  than ``REACH`` pixels is one piece): a picture's hatching, dashed or stippled too, is one piece, and a caption
  beside it is not left waiting behind its many cells;
- a candidate inside a line already kept is dropped undecoded: that line is found;
- a candidate on a speck (a mark of a few pixels with no ink beside it: dust, pepper, a foxed leaf's dots) waits
  until every other candidate, the ink no kept line covers included, is decoded: a foxed leaf's specks outnumber
  the notes on it by far, and ``FRUITLESS`` of them in a row would give the window up before the notes;
- when the candidates run out, the ink no kept line covers gives more: one candidate per connected piece of it
  in which no point was decoded yet. Small print puts two lines in one cell, and the cell's candidate falls on
  one of them; the other line's ink is left uncovered and is prompted this way (a piece where a point was
  decoded already is not prompted again: the model has answered there).

Rounds stop when no candidate is left, at the cap (raised to one a mark of ink where a window holds more: small
print in columns; passed, up to ``EXTEND_UP_TO`` times, while most of a round's points still give lines over new
ink; stopping there with ink left to prompt is said, as lines may be missing), or when
``FRUITLESS`` points in a row, spread over the window, gave no line at all (the model says these strokes are not
text: decorations, a picture, stains; beside the kept lines, where the lines a point gives are often kept ones
seen from their edges' ink, only a line over the point itself counts).
Every line with ink of its own (ink no other kept line covers) is prompted at least once unless the window is
given up that way or cut at the cap — the property ``tests/test_text_prompts.py`` checks against the exhaustive
sampling with a decoder that knows the true lines: ordinary print, small print (in columns too), a caption amid a
picture, notes on a foxed leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

CELL = 24  # window pixels: about a printed line's height at a page's own scale
MIN_INK = 4  # stroke pixels a cell (or a piece of uncovered ink) needs to give a candidate
FRUITLESS = 32  # points in a row without a line, farthest-first over the window, after which it is given up
REACH = 9  # window pixels: ink closer than this is one piece (a picture's hatching; not a line and the next)
GAP = 12  # window pixels: ink this close along a row is one mark (words of a line; not the next column's)
# A window whose last round of prompts still found lines over new ink goes on past its cap, by the cap again, up
# to this many times it (columns of small print at a low scan resolution hold hundreds of lines that touch).
EXTEND_UP_TO = 4
SPECK_INK = 64  # stroke pixels below which a mark with no other ink within GAP beside it is a speck, prompted
#                 last (the largest speck on the SBB endpaper: 61 pixels; the faintest printed digit: 89)


def candidates(strokes: np.ndarray, cell: int = CELL, min_ink: int = MIN_INK) -> np.ndarray:
    """``strokes [h, w]`` bool → candidate points ``[M, 2]`` float32 (x, y): in each ``cell``-pixel square
    with at least ``min_ink`` stroke pixels, the stroke pixel nearest the square's centre."""
    ys, xs = np.nonzero(strokes)
    if not len(xs):
        return np.zeros((0, 2), np.float32)
    columns = (strokes.shape[1] + cell - 1) // cell
    cells = (ys // cell) * columns + xs // cell
    centre_x, centre_y = (xs // cell) * cell + cell / 2, (ys // cell) * cell + cell / 2
    return _nearest_of_each(xs, ys, cells, (xs - centre_x) ** 2 + (ys - centre_y) ** 2, min_ink)


def uncovered_pieces(strokes: np.ndarray, covered: np.ndarray, to_frame: float, decoded: np.ndarray,
                     min_ink: int = MIN_INK) -> np.ndarray:
    """Candidates ``[M, 2]`` float32 (x, y) in the ink of ``strokes [h, w]`` that no kept line covers:
    ``covered [F, F]`` bool, the kept lines' union in the mask frame (a window pixel ``p`` falls in its cell
    ``int(p · to_frame)``). One per connected piece of that ink with at least ``min_ink`` pixels and none of the
    points ``decoded [N, 2]``: its pixel nearest the piece's centroid.

    Not grown around the lines: small print's neighbouring lines are a cell or two apart in the mask frame, and
    a line's ink is all that tells it from its neighbours' edges."""
    side = covered.shape[0]
    rows, columns = (_cells(np.arange(length), to_frame, side) for length in strokes.shape)
    ink = strokes & ~covered[rows[:, None], columns[None, :]]
    count, labels, _, centroids = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    spent = np.zeros(count, bool)
    spent[0] = True  # the background
    if len(decoded):
        at = np.clip(decoded.astype(int), 0, [strokes.shape[1] - 1, strokes.shape[0] - 1])
        spent[labels[at[:, 1], at[:, 0]]] = True
    ys, xs = np.nonzero(ink)
    pieces = labels[ys, xs]
    live = ~spent[pieces]
    xs, ys, pieces = xs[live], ys[live], pieces[live]
    distance = (xs - centroids[pieces, 0]) ** 2 + (ys - centroids[pieces, 1]) ** 2
    return _nearest_of_each(xs, ys, pieces, distance, min_ink)


def ink_marks(strokes: np.ndarray, gap: int = GAP, speck_ink: int = SPECK_INK) -> tuple[np.ndarray, int]:
    """The specks of ``strokes [h, w]`` bool — ``[h, w]`` bool: its ink in marks of fewer than ``speck_ink`` pixels
    with no other ink within ``gap`` pixels beside them (dust, pepper, a foxed page's dots; not letters and words,
    whose neighbours along the line join them) — and how many other marks it holds: ink joined along a row across
    gaps up to ``gap`` pixels (a line of text in one column, a word set apart, a picture's part)."""
    # An odd width: OpenCV anchors an even kernel off centre, and the closing would then shift thin marks off.
    joined = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, gap | 1), np.uint8))
    count, labels = cv2.connectedComponents(joined, connectivity=8)
    ink = np.bincount(labels[strokes], minlength=count)
    small = ink < speck_ink
    small[0] = False  # the background
    return strokes & small[labels], int((~small[1:]).sum())


def _at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``image [h, w]``'s values at ``points [M, 2]`` (x, y): ``[M]``."""
    return image[points[:, 1].astype(int), points[:, 0].astype(int)]


def _cells(coordinates: np.ndarray, to_frame: float, side: int) -> np.ndarray:
    """Window pixel coordinates → the mask frame's cells (computed in float32, the same for every caller)."""
    return (np.asarray(coordinates, np.float32) * np.float32(to_frame)).astype(int).clip(0, side - 1)


def _nearest_of_each(xs: np.ndarray, ys: np.ndarray, groups: np.ndarray, distance: np.ndarray,
                     min_ink: int) -> np.ndarray:
    """For each group of at least ``min_ink`` pixels, its pixel of least ``distance``: ``[M, 2]`` (x, y)."""
    if not len(xs):
        return np.zeros((0, 2), np.float32)
    order = np.lexsort((distance, groups))
    first = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    counts = np.diff(np.r_[first, len(order)])
    chosen = order[first[counts >= min_ink]]
    return np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float32)


def farthest_first(points: np.ndarray, taken: np.ndarray, count: int, pieces: np.ndarray | None = None,
                   to_taken: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``count`` of ``points [M, 2]``, each in turn the one farthest from ``taken [K, 2]`` and from
    those picked before it (the first, when nothing is taken, the one nearest the top left). ``to_taken [M]``:
    each point's squared distance to the nearest of ``taken``, where the caller keeps it (:func:`nearest_to`).

    ``pieces [M]``: the piece of ink each point lies in, ``-1`` where a point there gave no line. Every other
    point (the first, the third, … counting those taken) is then the farthest of those whose piece is not
    ``-1`` nor picked from in this call, while there are any: a picture's hatching is one piece, and a caption
    amid it is not left waiting behind its many cells, while lines whose ink runs into a rule are still taken
    in their turn."""
    count = min(count, len(points))
    if count == 0:
        return np.zeros(0, int)
    pieces = None if pieces is None else pieces.copy()

    def farthest(nearest: np.ndarray, number: int) -> int:
        if pieces is not None and number % 2 == 0 and ((pieces >= 0) & (nearest > 0)).any():
            return int(np.argmax(np.where(pieces >= 0, nearest, -1)))
        return int(np.argmax(nearest))

    nearest = nearest_to(points, taken) if to_taken is None else to_taken
    if len(taken):
        first = farthest(nearest, len(taken))
    else:
        towards_top_left = points.sum(axis=1).max() + 1 - points.sum(axis=1)  # > 0, the larger the nearer
        first = farthest(towards_top_left, 0)
    picked = [first]
    for _ in range(count):
        if pieces is not None and pieces[picked[-1]] >= 0:
            pieces[pieces == pieces[picked[-1]]] = -1
        nearest = nearest_to(points, points[picked[-1:]], nearest)
        if len(picked) == count:
            break
        following = farthest(nearest, len(taken) + len(picked))
        if not np.isfinite(nearest[following]) or nearest[following] <= 0:
            break  # only points already picked (or on them) are left
        picked.append(following)
    return np.array(picked)


def nearest_to(points: np.ndarray, taken: np.ndarray, to_taken: np.ndarray | None = None) -> np.ndarray:
    """Each of ``points [M, 2]``'s squared distance to the nearest of ``taken [K, 2]`` ``[M]`` (inf with none
    taken), or of ``taken`` and of the points ``to_taken [M]`` was kept for before: a round's few points are
    compared with every candidate, not every point taken before them again (hundreds, in each round)."""
    nearest = np.full(len(points), np.inf, np.float32) if to_taken is None else to_taken
    for point in taken:
        nearest = np.minimum(nearest, ((points - point) ** 2).sum(-1))
    return nearest


class Prompted(NamedTuple):
    """The points decoded ``[N, 2]`` (x, y, window pixels) in their order; ``cut``: stopped at the cap with ink
    still to prompt that is not specks (lines may be missing there)."""

    points: np.ndarray
    cut: bool


def decode_in_rounds(strokes: np.ndarray, frame: tuple[int, float], batch: int, cap: int,
                     decode: Callable[[np.ndarray], np.ndarray]) -> Prompted:
    """Prompt the window whose stroke mask is ``strokes [h, w]`` bool a round of ``batch`` points at a time, at
    most ``cap`` in all, or one a mark of ink (:func:`ink_marks`) where the window holds more (small print in
    columns: a line each); past that while the last round still found lines over ink no line covered before,
    up to ``EXTEND_UP_TO`` times it.

    ``decode(points [B, 2])`` returns the masks of the lines it kept ``[K, F, F]`` bool in the mask frame:
    ``frame`` is ``(F, to_frame)``, window pixel ``p`` falling in cell ``int(p · to_frame)``."""
    side, to_frame = frame
    speckled, marks = ink_marks(strokes)
    cap = step = max(cap, marks)
    ceiling = EXTEND_UP_TO * cap
    ink_cells = np.zeros((side, side), bool)  # the mask frame's cells that hold ink
    ys, xs = np.nonzero(strokes)
    inked = _cells(np.stack([xs, ys], axis=1), to_frame, side)
    ink_cells[inked[:, 1], inked[:, 0]] = True
    pool = candidates(strokes)
    deferred = _at(speckled, pool)  # prompted after the others
    closed = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (REACH, REACH)))
    _, labels = cv2.connectedComponents(closed, connectivity=8)
    pieces = _at(labels, pool)  # -1: a point there gave no line
    cells = _cells(pool, to_frame, side)
    alive = np.ones(len(pool), bool)
    covered = np.zeros((side, side), bool)  # the kept lines' union
    taken = np.zeros((0, 2), np.float32)
    to_taken = nearest_to(pool, taken)
    fruitless = 0
    beside = False  # prompting the ink no kept line covers
    fresh = False  # most of the last round's points gave a line over themselves covering ink none covered before
    while fruitless < FRUITLESS:
        if len(taken) >= cap:
            if not fresh or cap >= ceiling:
                break
            cap = min(ceiling, cap + step)
        ready = alive & ~deferred
        if not alive.any() or not (beside or ready.any()):
            # The specks' cells are left for their pieces here, after the ink no kept line covers.
            pool = uncovered_pieces(strokes, covered, to_frame, taken)
            pieces, cells = np.arange(len(pool)), _cells(pool, to_frame, side)  # a candidate a piece
            alive, beside = np.ones(len(pool), bool), True
            deferred = _at(speckled, pool)
            to_taken = nearest_to(pool, taken)
            ready = ~deferred
            if not len(pool):
                break
        waiting = np.flatnonzero(ready if ready.any() else alive)
        picked = waiting[farthest_first(pool[waiting], taken, min(batch, cap - len(taken)), pieces[waiting],
                                        to_taken[waiting])]
        alive[picked] = False
        lines = decode(pool[picked])  # [K, F, F], K may be 0
        taken = np.concatenate([taken, pool[picked]])
        to_taken = nearest_to(pool, pool[picked], to_taken)
        covers = lines[:, cells[:, 1], cells[:, 0]]  # [K, M]: the candidates inside each line kept
        over_itself = covers[:, picked].any(axis=0)  # [B]: a kept line lies over the point
        # Fresh: most points gave a line over themselves that covers ink no line covered before.
        new_ink = (lines & (ink_cells & ~covered)).any(axis=(1, 2))  # [K]
        fresh = 2 * int((covers[:, picked] & new_ink[:, None]).any(axis=0).sum()) >= len(picked)
        covered |= lines.any(axis=0)
        # A piece where a point gave no line over itself waits (a picture); one where it did (lines run
        # together in one piece of ink) does not: its other lines are still to be found.
        pieces[np.isin(pieces, pieces[picked[~over_itself]])] = -1
        # Beside the kept lines, a point bears fruit only by a line over itself: the lines over other ink there
        # are often the kept ones again, seen from their edges' ink.
        found = over_itself.any() if beside else covers.any()
        fruitless = 0 if found else fruitless + len(picked)
        alive &= ~covers.any(axis=0)
    return Prompted(taken, len(taken) >= cap and fruitless < FRUITLESS and (not beside or (alive & ~deferred).any()))
