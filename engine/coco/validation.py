"""A COCO annotation's geometry checked against its page before it is stored.

Shapes are clipped to the page. Box and area are recomputed from the
segmentation and compared with the file's own: values that agree within 1 %
are kept as written (a round trip changes nothing), others are replaced by the
recomputed ones and reported, as is every clipping. Shapes that are empty or
lie wholly outside the page are refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.coco.geometry import (
    GeometryError,
    PolygonPart,
    Shape,
    polygons_from_coco,
    rle_from_coco,
    shape_from,
)

TOLERANCE = 0.01
# A box recomputed from its polygon by another tool differs by up to half a pixel (pixel edges or centres): that
# is the same box. A correction is reported when an edge moved by more than a pixel.
BOX_TOLERANCE_PX = 1.0


@dataclass(slots=True)
class CheckedShape:
    shape: Shape
    notes: list[str] = field(default_factory=list)  # what was corrected, for the report


def checked_shape(raw: dict[str, Any], width: int, height: int) -> CheckedShape:
    """The annotation's shape on a ``width`` × ``height`` page, or :class:`GeometryError` saying why not."""
    segmentation = raw.get("segmentation")
    attributes = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
    declared_box = _declared_box(raw.get("bbox"))
    if attributes.get("shape") == "box" and declared_box is not None:
        segmentation = None  # Marginalia's own box, written out as a rectangle
    notes: list[str] = []
    if isinstance(segmentation, dict):
        rle = rle_from_coco(segmentation, height, width)
        shape = shape_from(bbox=None, polygons=None, rle=rle, area=None, height=height, width=width)
        if shape.area <= 0:
            raise GeometryError("its mask is empty")
        unclipped_areas = [shape.area]
    elif isinstance(segmentation, list) and segmentation:
        polygons = polygons_from_coco(segmentation)
        clipped = _clip_parts(polygons, width, height)
        if not clipped:
            outside = all(not _touches_page(part["exterior"], width, height) for part in polygons)
            raise GeometryError("its polygon lies wholly outside the page" if outside
                                else "its polygon has no area")
        if clipped != polygons:
            notes.append("its polygon was clipped to the page")
        shape = shape_from(bbox=None, polygons=clipped, rle=None, area=None, height=height, width=width)
        if shape.area <= 0:
            raise GeometryError("its polygon covers no pixel of the page")
        unclipped_areas = [shape.area, sum(_ring_area(part["exterior"]) for part in polygons)]
    elif segmentation in (None, []):
        if declared_box is None:
            raise GeometryError("it has neither a segmentation nor a box")
        box = _clip_box(declared_box, width, height)
        if box is None:
            x, y, w, h = declared_box
            outside = x >= width or y >= height or x + w <= 0 or y + h <= 0
            raise GeometryError("its box lies wholly outside the page" if outside else "its box has no area")
        if box != declared_box:
            notes.append("its box was clipped to the page")
        shape = shape_from(bbox=box, polygons=None, rle=None, area=None, height=height, width=width)
        return CheckedShape(shape, notes)
    else:
        raise GeometryError("segmentation is neither a polygon list nor an RLE object")
    disagreements = _disagreements(raw, declared_box, shape, unclipped_areas, width, height)
    if not notes:
        shape = _keep_agreeing_values(raw, declared_box, shape, disagreements)
    return CheckedShape(shape, notes + [text for _, text in disagreements])


def _keep_agreeing_values(raw: dict[str, Any], declared_box: tuple[float, float, float, float] | None,
                          shape: Shape, disagreements: list[tuple[str, str]]) -> Shape:
    wrong = {what for what, _ in disagreements}
    box = declared_box if declared_box is not None and "bbox" not in wrong else shape.bbox
    area = raw.get("area")
    area = float(area) if isinstance(area, int | float) and not isinstance(area, bool) and "area" not in wrong \
        else shape.area
    return Shape(box, shape.polygons, shape.rle, area)


def _declared_box(bbox: Any) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
        raise GeometryError("bbox must be four numbers [x, y, width, height]")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0 or not all(abs(v) < float("inf") for v in (x, y, w, h)):
        raise GeometryError(f"box {bbox} has a negative or missing width or height")
    return (x, y, w, h)


def _disagreements(raw: dict[str, Any], declared_box: tuple[float, float, float, float] | None, shape: Shape,
                   reference_areas: list[float], width: int, height: int) -> list[tuple[str, str]]:
    notes = []
    if declared_box is not None:
        clipped_declared = _clip_box(declared_box, width, height) or declared_box
        if _largest_edge_gap(clipped_declared, shape.bbox) > BOX_TOLERANCE_PX:
            notes.append(("bbox", f"its bbox {[round(v, 2) for v in declared_box]} disagrees with its segmentation "
                         f"{[round(v, 2) for v in shape.bbox]}; the segmentation's was kept"))
    area = raw.get("area")
    if isinstance(area, int | float) and not isinstance(area, bool):
        if all(abs(float(area) - reference) > TOLERANCE * max(reference, 1.0) for reference in reference_areas):
            notes.append(("area", f"its area {round(float(area), 2)} disagrees with its segmentation "
                         f"({round(shape.area, 2)}); the segmentation's was kept"))
    return notes


def _largest_edge_gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    edges_a = (a[0], a[1], a[0] + a[2], a[1] + a[3])
    edges_b = (b[0], b[1], b[0] + b[2], b[1] + b[3])
    return max(abs(p - q) for p, q in zip(edges_a, edges_b, strict=True))


def _clip_box(box: tuple[float, float, float, float], width: int, height: int
              ) -> tuple[float, float, float, float] | None:
    x, y, w, h = box
    left, top = max(0.0, x), max(0.0, y)
    right, bottom = min(float(width), x + w), min(float(height), y + h)
    if right <= left or bottom <= top:
        return None
    return (left, top, right - left, bottom - top)


def _touches_page(ring: list[float], width: int, height: int) -> bool:
    xs, ys = ring[0::2], ring[1::2]
    return max(xs) > 0 and min(xs) < width and max(ys) > 0 and min(ys) < height


def _clip_parts(parts: list[PolygonPart], width: int, height: int) -> list[PolygonPart]:
    clipped = []
    for part in parts:
        exterior = _clip_ring(part["exterior"], width, height)
        if exterior is None:
            continue
        holes = [hole for hole in (_clip_ring(ring, width, height) for ring in part.get("holes", []))
                 if hole is not None]
        clipped.append({"exterior": exterior, "holes": holes})
    return clipped


def _clip_ring(ring: list[float], width: int, height: int) -> list[float] | None:
    """Sutherland–Hodgman against the page rectangle; ``None`` when nothing with an area is left."""
    points = list(zip(ring[0::2], ring[1::2], strict=True))
    if all(0 <= x <= width and 0 <= y <= height for x, y in points):
        return ring
    edges = ((0, 0.0, True), (0, float(width), False), (1, 0.0, True), (1, float(height), False))
    for axis, limit, keep_above in edges:
        if not points:
            break
        points = _clip_against(points, axis, limit, keep_above)
    flat = [value for point in points for value in point]
    if len(points) < 3 or _ring_area(flat) <= 0:
        return None
    return flat


def _clip_against(points: list[tuple[float, float]], axis: int, limit: float,
                  keep_above: bool) -> list[tuple[float, float]]:
    def inside(point: tuple[float, float]) -> bool:
        return point[axis] >= limit if keep_above else point[axis] <= limit

    def crossing(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        t = (limit - a[axis]) / (b[axis] - a[axis])
        other = a[1 - axis] + t * (b[1 - axis] - a[1 - axis])
        return (limit, other) if axis == 0 else (other, limit)

    result: list[tuple[float, float]] = []
    for index, current in enumerate(points):
        previous = points[index - 1]
        if inside(current):
            if not inside(previous):
                result.append(crossing(previous, current))
            result.append(current)
        elif inside(previous):
            result.append(crossing(previous, current))
    return result


def _ring_area(ring: list[float]) -> float:
    xs, ys = ring[0::2], ring[1::2]
    total = sum(xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs)))
    return abs(total) / 2

