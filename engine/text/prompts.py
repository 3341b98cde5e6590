"""Where to prompt Hi-SAM's H-Decoder in a window, and how many times.

The authors sample hundreds of random stroke pixels a window and decode them all, so a line of text is
decoded dozens of times. Here the prompts come from the stroke mask's structure and are decoded in rounds:

- the window is cut into cells about a printed line high; each cell holding ink gives one candidate, the
  stroke pixel nearest the cell's centre (a cell with a speck of a few pixels gives none);
- each round takes the candidates farthest from every point decoded so far (so a round spreads over the
  window's lines instead of piling onto one);
- a candidate inside a line already kept is dropped undecoded: that line is found.

Rounds stop when no candidate is left, at the cap, or when ``FRUITLESS`` points in a row, spread over the
window, gave no line at all (the model says these strokes are not text: decorations, a picture, stains).
Every line holding ink of its own (a cell not covered by another kept line) is prompted at least once unless
the window is given up that way — the property ``tests/test_text_prompts.py`` checks against the exhaustive
sampling with a decoder that knows the true lines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CELL = 24  # window pixels: about a printed line's height at a page's own scale
MIN_INK = 4  # stroke pixels a cell needs to give a candidate
FRUITLESS = 32  # points in a row without a line, farthest-first over the window, after which it is given up


def candidates(strokes: np.ndarray, cell: int = CELL, min_ink: int = MIN_INK) -> np.ndarray:
    """``strokes [h, w]`` bool → candidate points ``[M, 2]`` float32 (x, y): in each ``cell``-pixel square
    with at least ``min_ink`` stroke pixels, the stroke pixel nearest the square's centre."""
    ys, xs = np.nonzero(strokes)
    if not len(xs):
        return np.zeros((0, 2), np.float32)
    columns = (strokes.shape[1] + cell - 1) // cell
    cells = (ys // cell) * columns + xs // cell
    centre_x, centre_y = (xs // cell) * cell + cell / 2, (ys // cell) * cell + cell / 2
    distance = (xs - centre_x) ** 2 + (ys - centre_y) ** 2
    order = np.lexsort((distance, cells))
    first = np.flatnonzero(np.r_[True, cells[order][1:] != cells[order][:-1]])
    counts = np.diff(np.r_[first, len(order)])
    chosen = order[first[counts >= min_ink]]
    return np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float32)


def farthest_first(points: np.ndarray, taken: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` of ``points [M, 2]``, each in turn the one farthest from ``taken [K, 2]`` and from
    those picked before it (the first, when nothing is taken, the one nearest the top left)."""
    count = min(count, len(points))
    if count == 0:
        return np.zeros(0, int)
    if len(taken):
        nearest = np.min(((points[:, None, :] - taken[None, :, :]) ** 2).sum(-1), axis=1)
        first = int(np.argmax(nearest))
    else:
        first = int(np.argmin(points.sum(axis=1)))
        nearest = np.full(len(points), np.inf)
    picked = [first]
    nearest = np.minimum(nearest, ((points - points[first]) ** 2).sum(-1))
    for _ in range(count - 1):
        following = int(np.argmax(nearest))
        if not np.isfinite(nearest[following]) or nearest[following] <= 0:
            break  # only points already picked (or on them) are left
        picked.append(following)
        nearest = np.minimum(nearest, ((points - points[following]) ** 2).sum(-1))
    return np.array(picked)


def decode_in_rounds(pool: np.ndarray, batch: int, cap: int,
                     decode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Decode candidates ``pool [M, 2]`` a round of ``batch`` at a time, at most ``cap`` in all; the points
    decoded ``[N, 2]``, in their order.

    ``decode(points [B, 2])`` returns ``covers [C, M]`` bool: for each line it kept, which of the pool's
    candidates lie inside it (those are not decoded later)."""
    alive = np.ones(len(pool), bool)
    taken = np.zeros((0, 2), np.float32)
    fruitless = 0
    while alive.any() and len(taken) < cap and fruitless < FRUITLESS:
        waiting = np.flatnonzero(alive)
        picked = waiting[farthest_first(pool[waiting], taken, min(batch, cap - len(taken)))]
        alive[picked] = False
        covers = decode(pool[picked])
        taken = np.concatenate([taken, pool[picked]])
        found = len(covers) and covers.any()
        fruitless = 0 if found else fruitless + len(picked)
        if found:
            alive &= ~covers.any(axis=0)
    return taken
