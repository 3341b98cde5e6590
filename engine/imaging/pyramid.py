"""Resolution pyramids and tiles for viewing large pages at any zoom.

Level 0 is the page at full resolution; each further level halves both sides.
A viewer draws from the coarsest level that still has at least one source
pixel per screen pixel, one tile at a time, so a 20000×15000 scan needs only
the tiles in view.
"""

from __future__ import annotations

import math

from PIL import Image

TILE_SIZE = 512


def build_levels(page: Image.Image, smallest_side: int = 1024) -> list[Image.Image]:
    """``[full, 1/2, 1/4, ...]`` down to the first level whose longer side fits ``smallest_side``."""
    levels = [page]
    while max(levels[-1].size) > smallest_side:
        previous = levels[-1]
        levels.append(previous.reduce(2))  # box filter: fast and alias-free for halving
    return levels


def level_for_scale(scale: float, level_count: int) -> int:
    """The coarsest level that still shows ``scale`` screen pixels per page pixel sharply."""
    if scale <= 0:
        return level_count - 1
    level = int(math.floor(math.log2(1.0 / scale))) if scale < 1 else 0
    return max(0, min(level, level_count - 1))


def tile_grid(level: Image.Image, tile_size: int = TILE_SIZE) -> tuple[int, int]:
    """Number of tile columns and rows of a level."""
    width, height = level.size
    return (math.ceil(width / tile_size), math.ceil(height / tile_size))


def tile(level: Image.Image, column: int, row: int, tile_size: int = TILE_SIZE) -> Image.Image:
    """The tile at ``column, row``; edge tiles are smaller, never padded."""
    left, top = column * tile_size, row * tile_size
    box = (left, top, min(left + tile_size, level.width), min(top + tile_size, level.height))
    return level.crop(box)


class MemoryPyramid:
    """The levels of :func:`build_levels`, as a tile source for the viewer.

    Same interface as :class:`engine.imaging.vips.PyramidFile`, which reads the
    tiles of pages too large to hold from a file instead.
    """

    def __init__(self, levels: list[Image.Image]) -> None:
        self._levels = levels

    def level_count(self) -> int:
        return len(self._levels)

    def level_size(self, level: int) -> tuple[int, int]:
        return self._levels[level].size

    def tile(self, level: int, column: int, row: int, tile_size: int = TILE_SIZE) -> Image.Image:
        return tile(self._levels[level], column, row, tile_size)
