"""An outline from another tool checked against its page before it is stored — every importer's one check.

What no tool could use is refused with the reason: a coordinate that is not a number or lies far beyond the
page (``1e308``), fewer than three distinct points, an outline with no area, one wholly outside the page.
What can be mended is mended and said: an outline that crosses itself is made valid as GIS tools make it
(GEOS's ``make_valid``: a bow-tie becomes its two triangles), and one that reaches past the page's edge is
clipped to it. An outline that needs neither is stored exactly as written.

Outlines are lists of ``(x, y)`` page pixels; results are polygon parts as the store keeps them
(``{"exterior": [x0, y0, x1, y1, …], "holes": [[…], …]}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from engine.coco.geometry import GeometryError, PolygonPart

# How far beyond the page a coordinate may lie (in page sizes) and still be a shape to clip, not damage.
FAR_OUTSIDE = 10


@dataclass(slots=True)
class CheckedOutline:
    parts: list[PolygonPart]
    notes: list[str] = field(default_factory=list)  # what was mended, for the curator's report


def check_coordinates(values: Iterable[float], width: int, height: int) -> None:
    """Refuse a coordinate that is not a finite number, or one so far beyond the page that it is damage."""
    limit = FAR_OUTSIDE * max(width, height, 1)
    for value in values:
        if not math.isfinite(value):
            raise GeometryError(f"a coordinate is not a number ({value})")
        if abs(value) > limit:
            raise GeometryError(f"a coordinate ({value:g}) lies far outside the {width}×{height} page")


def checked_outline(points: Sequence[tuple[float, float]], width: int, height: int) -> CheckedOutline:
    """The outline as polygon parts on a ``width`` × ``height`` page, or :class:`GeometryError` saying why not."""
    check_coordinates((value for point in points for value in point), width, height)
    distinct = _without_repeats(points)
    if len(distinct) < 3:
        raise GeometryError(f"its outline has {len(distinct)} distinct point(s), so no area")
    polygon = Polygon(distinct)
    page = shapely.box(0, 0, width, height)
    if polygon.is_valid and polygon.area > 0 and page.covers(polygon):
        return CheckedOutline([{"exterior": [float(v) for point in points for v in point], "holes": []}])
    notes = []
    shape: BaseGeometry = polygon
    if not polygon.is_valid:
        shape = shapely.make_valid(polygon)
        if _area(shape) > 0:
            notes.append("its outline crossed itself and was mended")
    if _area(shape) <= 0:
        raise GeometryError("its outline has no area")
    if not shape.intersects(page) or shape.intersection(page).area <= 0:
        raise GeometryError(f"it lies wholly outside the {width}×{height} page")
    if not page.covers(shape):
        shape = shape.intersection(page)
        notes.append("it was clipped to the page")
    parts = [_part(part) for part in polygons_of(shape)]
    return CheckedOutline(parts, notes)


def checked_area(shape: BaseGeometry, width: int, height: int) -> CheckedOutline:
    """Any area (parts with holes) as polygon parts on the page, clipped to it and said so, or
    :class:`GeometryError` when it has no area on the page."""
    bounds = shape.bounds if not shape.is_empty else ()
    check_coordinates(bounds, width, height)
    if _area(shape) <= 0:
        raise GeometryError("its outline has no area")
    notes = []
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
        notes.append("its outline crossed itself and was mended")
    page = shapely.box(0, 0, width, height)
    if not page.covers(shape):
        shape = shape.intersection(page)
        if _area(shape) <= 0:
            raise GeometryError(f"it lies wholly outside the {width}×{height} page")
        notes.append("it was clipped to the page")
    return CheckedOutline([_part(part) for part in polygons_of(shape)], notes)


def _without_repeats(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for point in points:
        if not kept or point != kept[-1]:
            kept.append((float(point[0]), float(point[1])))
    if len(kept) > 1 and kept[0] == kept[-1]:
        kept.pop()
    return kept


def polygons_of(shape: BaseGeometry) -> list[Polygon]:
    """The polygons of any shapely shape with area (a collection's members; lines and points have none)."""
    if isinstance(shape, Polygon):
        return [shape] if shape.area > 0 else []
    if hasattr(shape, "geoms"):  # MultiPolygon, GeometryCollection
        return [polygon for member in shape.geoms for polygon in polygons_of(member)]
    return []  # lines and points: no area


def _area(shape: BaseGeometry) -> float:
    return sum(polygon.area for polygon in polygons_of(shape))


def _part(polygon: Polygon) -> PolygonPart:
    def flat(ring: BaseGeometry) -> list[float]:
        coordinates = list(ring.coords)[:-1]  # shapely repeats the first point at the end
        return [float(value) for point in coordinates for value in point]

    return {"exterior": flat(polygon.exterior), "holes": [flat(hole) for hole in polygon.interiors]}
