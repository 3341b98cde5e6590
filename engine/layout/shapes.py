"""A shape as PAGE XML and ALTO can hold it: each region one outline, without holes.

A mask is traced along its pixels' edges: a pixel (x, y) covers [x, x+1] × [y, y+1], so a mask of pixels
100…299 spans 100 to 300 (tracing through the pixels' centres would put the right and bottom edges a pixel
short). A part with holes is written as one outline that reaches each hole through a cut two pixels wide
(the "keyhole" the formats' readers fill exactly as drawn, less the cut); several parts become several
regions, decided by the caller. What could not be kept is counted for the export's summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import nearest_points, unary_union

from engine.coco.geometry import rasterise
from engine.layout.model import Points
from engine.outlines import polygons_of
from engine.segmentation.masks import polygons_from_mask

CUT_WIDTH = 2.0  # page pixels: on whole pixels at least one stays open, so the outline never touches itself


def parts_of(polygons: list[dict] | None, rle: dict | None, box: tuple[float, float, float, float], width: int,
             height: int) -> list[Polygon]:
    """The shape's parts in page pixels, holes kept: its polygons as drawn, its mask traced along pixel edges,
    or its box."""
    parts = [polygon for part in polygons or [] for polygon in _polygons_of_part(part)]
    if parts:
        return parts
    if rle is not None:
        return mask_parts(rasterise(None, rle, height, width))
    x, y, w, h = box
    return [shapely.box(x, y, x + w, y + h)]


def mask_parts(mask: np.ndarray) -> list[Polygon]:
    """A ``(height, width)`` mask's parts as polygons along its pixels' edges, holes included (the tracing
    the mask tools use for editable outlines)."""
    return [polygon for part in polygons_from_mask(mask) for polygon in _polygons_of_part(part)]


def _polygons_of_part(part: dict) -> list[Polygon]:
    """A stored polygon part (flat exterior and holes) as shapely polygons, mended if it crosses itself."""
    exterior = _pairs(part.get("exterior") or [])
    if len(exterior) < 3:
        return []
    shape = Polygon(exterior, [_pairs(hole) for hole in part.get("holes") or [] if len(hole) >= 6])
    return polygons_of(shape if shape.is_valid else shapely.make_valid(shape))


@dataclass
class WritableOutline:
    points: Points
    holes_cut: int = 0
    hole_kept_out: int = 0  # holes no cut could reach: the part is written without them


def writable(part: Polygon) -> WritableOutline:
    """One outline for a part: its exterior, each hole reached by a cut from the nearest point outside."""
    opened, cut = part, 0
    while opened.interiors:
        hole = opened.interiors[0]
        inside, outside = nearest_points(hole, opened.exterior)
        channel = LineString([inside, outside]).buffer(CUT_WIDTH / 2, cap_style="square")
        # On whole pixels, as PAGE writes them, the cut stays open (a cut rounded shut would touch itself).
        attempt = shapely.set_precision(opened.difference(channel), 1.0)
        if not isinstance(attempt, Polygon) or len(attempt.interiors) >= len(opened.interiors):
            kept_out = len(opened.interiors)
            return WritableOutline(_points(Polygon(opened.exterior)), cut, kept_out)
        opened, cut = attempt, cut + 1
    return WritableOutline(_points(opened), cut)


def hull(parts: list[Polygon]) -> Points:
    """The outline around several parts (for a line or word, which the formats give one outline)."""
    return _points(Polygon(unary_union(parts).convex_hull.exterior))


def _points(polygon: Polygon) -> Points:
    """The exterior's points; a triangle gets the middle of its longest side too, since OCR-D's tools refuse
    outlines of fewer than four points."""
    points = [(float(x), float(y)) for x, y in list(polygon.exterior.coords)[:-1]]
    if len(points) == 3:
        longest = max(range(3), key=lambda i: np.hypot(points[i][0] - points[(i + 1) % 3][0],
                                                         points[i][1] - points[(i + 1) % 3][1]))
        (x0, y0), (x1, y1) = points[longest], points[(longest + 1) % 3]
        points.insert(longest + 1, ((x0 + x1) / 2, (y0 + y1) / 2))
    return points


def _pairs(flat: list[float]) -> list[tuple[float, float]]:
    return list(zip(flat[0::2], flat[1::2], strict=False))
