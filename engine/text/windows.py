"""Windows over a page larger than the model's input, and page-sized logits stitched from theirs.

Hi-SAM sees 1024×1024 pixels. A 2577×3633 scan shrunk into that loses the strokes of small print, so a
large page is read in overlapping windows at its own scale; each window's logits are put back in place
and, where windows overlap, averaged. Neighbours side by side overlap by a fifth (a word cut at one window's
edge is whole in the next), one above the other by an eighth (128 px of 1024: a line cut at the bottom edge
is whole in the window below): 12 windows on that scan, where a quarter both ways took 20.

A window without anything stroke-like (no dark or light thin mark of some contrast and size: blank paper,
stains, the smooth part of a painting) is not read at all: see :func:`might_hold_text`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.detection.tiling import tile_starts

OVERLAP_ACROSS = 0.2  # of a window's side, between neighbours side by side
OVERLAP_DOWN = 0.125  # … and one above the other
STROKE_CONTRAST = 20  # grey levels a mark stands out from its surroundings (within 15 px)
STROKE_PIXELS = 48  # the size of the largest such mark for a window to be read (the faintest printed digit
#                     measured: 89; the largest speck on the SBB endpaper's blank windows: 61 at most)


@dataclass(frozen=True, slots=True)
class Window:
    """A part of the page (page pixels, end exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def plan_windows(width: int, height: int, side: int | None) -> list[Window]:
    """The whole page when ``side`` is ``None`` or the page fits in it; else ``side``-pixel squares
    overlapping by a quarter, covering the page (edge windows are cut to the page)."""
    if side is None or (width <= side and height <= side):
        return [Window(0, 0, width, height)]
    return [Window(x0, y0, min(x0 + side, width), min(y0 + side, height))
            for y0 in tile_starts(height, side, OVERLAP_DOWN) for x0 in tile_starts(width, side, OVERLAP_ACROSS)]


def might_hold_text(crop: np.ndarray) -> bool:
    """Whether a window ``[h, w, 3]`` uint8 RGB holds a mark text could be made of: a connected run of at least
    ``STROKE_PIXELS`` pixels darker or lighter than their surroundings by ``STROKE_CONTRAST`` (black-hat /
    top-hat of 15 px, after a 3 px median against scanner noise). Blank paper and stains have none."""
    grey = cv2.medianBlur(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY), 3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    contrast = np.maximum(cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel),
                          cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel))
    count, _, stats, _ = cv2.connectedComponentsWithStats((contrast > STROKE_CONTRAST).astype(np.uint8),
                                                          connectivity=8)
    return count > 1 and int(stats[1:, cv2.CC_STAT_AREA].max()) >= STROKE_PIXELS


def stitch(width: int, height: int, windows: list[Window],
           logits_of: Callable[[Window], np.ndarray]) -> np.ndarray:
    """Page logits ``[height, width]`` float32: each window's ``[h, w]`` logits in place, averaged where
    windows overlap."""
    total = np.zeros((height, width), np.float32)
    count = np.zeros((height, width), np.uint16)
    for window in windows:
        logits = logits_of(window)
        if logits.shape != (window.height, window.width):
            raise ValueError(f"window logits {logits.shape} do not fit the window {window}")
        total[window.y0:window.y1, window.x0:window.x1] += logits
        count[window.y0:window.y1, window.x0:window.x1] += 1
    if (count == 0).any():
        raise ValueError("the windows leave part of the page uncovered")
    return total / count
