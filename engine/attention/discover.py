"""What stands out, as regions: the patches holding most of the attention, in connected groups.

The patches that hold the chosen share of the attention mass (``keep_mass``) are grouped into connected
components (8-neighbours); each component is a region: its box and mask in page pixels (each patch's page
rectangle), and as score the share of the page's attention it holds. Tiny components (a single stray
patch) are left out; the strongest regions come first.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.attention.maps import DEFAULT_MASS, AttentionMap, keep_mass
from engine.text.masks import PageMask

MIN_PATCHES = 2


@dataclass(frozen=True)
class Region:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels
    mask: PageMask
    score: float  # the share of the page's attention mass inside the region (0..1)
    patches: int


def regions_of(attention: AttentionMap, head: str | int = "mean", share: float = DEFAULT_MASS,
               min_patches: int = MIN_PATCHES, limit: int = 50) -> list[Region]:
    grid = attention.head(head)
    kept = keep_mass(grid, share).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(kept, connectivity=8)
    total = float(grid.sum()) or 1.0
    gh, gw = grid.shape
    xs = np.linspace(0, attention.page_width, gw + 1)  # patch edges in page pixels
    ys = np.linspace(0, attention.page_height, gh + 1)
    found = []
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < min_patches:
            continue
        left, top = stats[label, cv2.CC_STAT_LEFT], stats[label, cv2.CC_STAT_TOP]
        right, bottom = left + stats[label, cv2.CC_STAT_WIDTH], top + stats[label, cv2.CC_STAT_HEIGHT]
        component = labels == label
        box = (float(xs[left]), float(ys[top]), float(xs[right]), float(ys[bottom]))
        x0, y0 = int(round(box[0])), int(round(box[1]))
        width, height = int(round(box[2])) - x0, int(round(box[3])) - y0
        # Each patch of the component as its page rectangle (nearest: the grid's own edges).
        page_mask = cv2.resize(component[top:bottom, left:right].astype(np.uint8), (width, height),
                               interpolation=cv2.INTER_NEAREST).astype(bool)
        mask = PageMask.of(page_mask, x0, y0)
        if mask is not None:
            found.append(Region(box, mask, float(grid[component].sum() / total), int(component.sum())))
    return sorted(found, key=lambda region: -region.score)[:limit]
