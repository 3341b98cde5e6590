"""Masks of words, lines and paragraphs on a large page, kept cropped to their boxes.

A page of 2577×3633 pixels holds hundreds of words; a full-page mask each would take gigabytes. A
``PageMask`` is the mask of its box and where that box lies on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.annotations import Geometry
from engine.coco.geometry import rle_from_mask
from engine.segmentation.masks import polygons_from_mask


@dataclass(frozen=True)
class PageMask:
    """``mask [h, w]`` bool at page pixels (x0, y0)."""

    x0: int
    y0: int
    mask: np.ndarray
    area: int = field(init=False)

    def __post_init__(self) -> None:
        # count_nonzero, not sum: a bool sum widens every pixel first (10x slower, and a page's words and their
        # pieces make thousands of these)
        object.__setattr__(self, "area", int(np.count_nonzero(self.mask)))

    @classmethod
    def of(cls, mask: np.ndarray, x0: int = 0, y0: int = 0) -> PageMask | None:
        """``mask`` (placed at x0, y0 on the page) cropped to its pixels; ``None`` when empty."""
        rows, columns = mask.any(axis=1), mask.any(axis=0)
        if not rows.any():
            return None
        top, bottom = int(rows.argmax()), len(rows) - int(rows[::-1].argmax())
        left, right = int(columns.argmax()), len(columns) - int(columns[::-1].argmax())
        return cls(x0 + int(left), y0 + int(top), np.ascontiguousarray(mask[top:bottom, left:right], dtype=bool))

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.mask.shape[1], self.y0 + self.mask.shape[0]

    def box_overlap(self, other: PageMask) -> int:
        """Pixels the two boxes share: a bound on the masks' intersection, at no cost."""
        a, b = self.box, other.box
        return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))

    def pixels_in(self, box: tuple[int, int, int, int]) -> int:
        x0, y0, x1, y1 = box
        return int(np.count_nonzero(
            self.mask[max(0, y0 - self.y0):max(0, y1 - self.y0), max(0, x0 - self.x0):max(0, x1 - self.x0)]))

    def shared_box(self, other: PageMask) -> tuple[int, int, int, int] | None:
        a, b = self.box, other.box
        box = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
        return box if box[0] < box[2] and box[1] < box[3] else None

    def intersection(self, other: PageMask) -> int:
        a, b = self.box, other.box
        x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
        if x0 >= x1 or y0 >= y1:
            return 0
        mine = self.mask[y0 - self.y0:y1 - self.y0, x0 - self.x0:x1 - self.x0]
        theirs = other.mask[y0 - other.y0:y1 - other.y0, x0 - other.x0:x1 - other.x0]
        return int(np.count_nonzero(mine & theirs))

    def iou(self, other: PageMask) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def clipped(self, box: tuple[int, int, int, int]) -> PageMask | None:
        """The part inside ``box`` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = box
        inside = np.zeros_like(self.mask)
        left, top = max(0, x0 - self.x0), max(0, y0 - self.y0)
        right, bottom = max(0, x1 - self.x0), max(0, y1 - self.y0)
        inside[top:bottom, left:right] = self.mask[top:bottom, left:right]
        return PageMask.of(inside, self.x0, self.y0)

    def components(self, min_area: int) -> list[PageMask]:
        """Connected pieces of at least ``min_area`` pixels, left to right."""
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            np.ascontiguousarray(self.mask, dtype=bool).view(np.uint8), connectivity=8)  # no copy
        pieces = []
        for label in range(1, count):
            left, top, width, height, area = (int(v) for v in stats[label])
            if area >= min_area:  # each piece compared within its own box, not over the whole mask
                pieces.append(PageMask(self.x0 + left, self.y0 + top,
                                       labels[top:top + height, left:left + width] == label))
        return sorted(pieces, key=lambda p: (p.x0, p.y0))

    def geometry(self, width: int, height: int) -> Geometry:
        """The exact mask as page RLE, with its outline polygons for editing."""
        full = np.zeros((height, width), np.uint8)
        x0, y0, x1, y1 = self.box
        full[y0:y1, x0:x1] = self.mask[: height - y0, : width - x0]
        polygons = polygons_from_mask(self.mask)
        for part in polygons:
            part["exterior"] = _shifted(part["exterior"], self.x0, self.y0)
            part["holes"] = [_shifted(hole, self.x0, self.y0) for hole in part["holes"]]
        return Geometry(polygons=polygons or None, rle=rle_from_mask(full))


def union(masks: list[PageMask]) -> PageMask:
    x0 = min(m.box[0] for m in masks)
    y0 = min(m.box[1] for m in masks)
    x1 = max(m.box[2] for m in masks)
    y1 = max(m.box[3] for m in masks)
    joined = np.zeros((y1 - y0, x1 - x0), bool)
    for m in masks:
        left, top = m.x0 - x0, m.y0 - y0
        joined[top:top + m.mask.shape[0], left:left + m.mask.shape[1]] |= m.mask
    result = PageMask.of(joined, x0, y0)
    assert result is not None
    return result


def _shifted(ring: list[float], dx: int, dy: int) -> list[float]:
    return [value + (dx if index % 2 == 0 else dy) for index, value in enumerate(ring)]
