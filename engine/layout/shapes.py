"""A shape as PAGE XML and ALTO can hold it: each region one outline, without holes.

A mask is traced along its pixels' edges: a pixel (x, y) covers [x, x+1] × [y, y+1], so a mask of pixels
100…299 spans 100 to 300 (tracing through the pixels' centres would put the right and bottom edges a pixel
short). A part with holes is written as one outline that reaches each hole through a cut one or two pixels wide (the
"keyhole" the formats' readers fill exactly as drawn, less the cut); several parts become several regions,
decided by the caller. What could not be kept is counted for the export's summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points, unary_union

from engine.coco.geometry import rasterise
from engine.layout.model import Points

CUT_WIDTH = 2.0  # page pixels: on whole pixels at least one stays open, so the outline never touches itself


def parts_of(polygons: list[dict] | None, rle: dict | None, box: tuple[float, float, float, float], width: int,
             height: int) -> list[Polygon]:
    """The shape's parts in page pixels, holes kept: its polygons as drawn, its mask traced along pixel edges,
    or its box."""
    if polygons:
        parts = []
        for part in polygons:
            exterior = _pairs(part.get("exterior") or [])
            if len(exterior) < 3:
                continue
            shape = Polygon(exterior, [_pairs(hole) for hole in part.get("holes") or [] if len(hole) >= 6])
            parts += _polygons(shape if shape.is_valid else shapely.make_valid(shape))
        if parts:
            return parts
    if rle is not None:
        return mask_parts(rasterise(None, rle, height, width))
    x, y, w, h = box
    return [shapely.box(x, y, x + w, y + h)]


def mask_parts(mask: np.ndarray) -> list[Polygon]:
    """A ``(height, width)`` mask's connected parts as polygons along its pixels' edges, holes included."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    pieces: list[BaseGeometry] = []
    for index, contour in enumerate(contours):
        if hierarchy[0][index][3] != -1:
            continue  # a hole: taken with its part below
        holes = [_centres(contours[child]) for child in range(len(contours)) if hierarchy[0][child][3] == index]
        # Contours run through the centres of the border pixels; half a pixel outwards are their edges (holes,
        # traced on the pixels around them, shrink by as much).
        pieces.append(_centre_shape(_centres(contour), [hole for hole in holes if len(hole) >= 3])
                      .buffer(0.5, join_style="mitre", cap_style="square"))
    page = shapely.box(0, 0, mask.shape[1], mask.shape[0])
    return _polygons(unary_union(pieces).intersection(page))


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


def _centres(contour: np.ndarray) -> list[tuple[float, float]]:
    """Pixel (x, y) of a contour: its centre (x + 0.5, y + 0.5) on the page."""
    return [(float(x) + 0.5, float(y) + 0.5) for x, y in contour.reshape(-1, 2)]


def _centre_shape(exterior: list[tuple[float, float]], holes: list[list[tuple[float, float]]]) -> BaseGeometry:
    if len(exterior) == 1:
        return Point(exterior[0])
    if len(exterior) == 2 or Polygon(exterior).area == 0:
        return LineString(exterior)
    shape = Polygon(exterior, holes)
    return shape if shape.is_valid else shapely.make_valid(shape)


def _polygons(shape: BaseGeometry) -> list[Polygon]:
    if isinstance(shape, Polygon):
        return [shape] if shape.area > 0 else []
    if isinstance(shape, MultiPolygon):
        return [part for part in shape.geoms if part.area > 0]
    return [part for geometry in getattr(shape, "geoms", []) for part in _polygons(geometry)]
