"""Windows over a page larger than the model's input, and page-sized logits stitched from theirs.

Hi-SAM sees 1024×1024 pixels. A 2577×3633 scan shrunk into that loses the strokes of small print, so a
large page is read in overlapping windows at its own scale; each window's logits are put back in place
and, where windows overlap, averaged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.detection.tiling import tile_starts

OVERLAP = 0.25  # of a window's side: a word cut at one window's edge is whole in its neighbour


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
            for y0 in tile_starts(height, side, OVERLAP) for x0 in tile_starts(width, side, OVERLAP)]


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
