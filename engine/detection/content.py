"""Where a page's content is: the box around its marks, so that tiles are not spent on the scanner's background or
on blank margins.

A mark is where the grey level changes by more than ``CONTRAST`` within a pixel or two of the page shrunk to
about ``SIDE`` pixels (a morphological gradient): the edges of ink, of a picture, of a stamp, the marbled edge of a
binding, the leaf's edge against the scanner's bed. Uniform areas hold none: blank paper, the bed, a stain's smooth
middle. Runs smaller than ``SPECK`` pixels there (dust, paper fibres) do not count. On the SBB endpaper
(2577×3633) the box leaves out the black bed around the leaf (about 14 % of the scan); a painting is content from
edge to edge.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

SIDE = 1024  # pixels of the shrunk page's longer side
CONTRAST = 24  # grey levels across a mark's edge (paper's scanner noise, median-filtered: under 10)
SPECK = 12  # pixels of the shrunk page: smaller runs are dust
MARGIN = 2  # pixels of the shrunk page added around the box (what shrinking may have blurred away)


def content_box(page: Image.Image) -> Box | None:
    """The box (x0, y0, x1, y1, page pixels) around the page's marks; ``None`` when it has none (blank)."""
    factor = max(1, math.ceil(max(page.size) / SIDE))
    small = page.reduce(factor) if factor > 1 else page
    grey = cv2.medianBlur(np.asarray(small.convert("L")), 3)  # scanner noise is not a mark
    edges = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats((edges > CONTRAST).astype(np.uint8), connectivity=8)
    marks = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= SPECK]
    if not len(marks):
        return None
    x0, y0 = marks[:, cv2.CC_STAT_LEFT].min(), marks[:, cv2.CC_STAT_TOP].min()
    x1 = (marks[:, cv2.CC_STAT_LEFT] + marks[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (marks[:, cv2.CC_STAT_TOP] + marks[:, cv2.CC_STAT_HEIGHT]).max()
    width, height = page.size
    return (float(max(0, (x0 - MARGIN) * factor)), float(max(0, (y0 - MARGIN) * factor)),
            float(min(width, (x1 + MARGIN) * factor)), float(min(height, (y1 + MARGIN) * factor)))
