"""Editing a shape's pixels: brush and eraser strokes, and turning a mask into an editable polygon.

Work happens in a window around the shape and the stroke, never on a whole-page mask (a map-sized
scan has hundreds of megapixels). The result is exact RLE for the whole page (built from the window's
runs) plus pixel-edge polygons, box and area recomputed from it.
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from engine.annotations import AnnotationRecord, Geometry
from engine.coco.geometry import Rle, rasterise, rasterise_window
from engine.errors import MarginaliaError
from engine.segmentation.masks import polygons_from_mask

Point = tuple[float, float]


class MaskEditError(MarginaliaError):
    """A mask edit that cannot be made (it would leave nothing, or lies off the page)."""


def paint(record: AnnotationRecord | None, page_width: int, page_height: int, stroke: list[Point], radius: float,
          *, erase: bool = False) -> Geometry:
    """The shape after a brush (or eraser) stroke along ``stroke`` (page pixels) of the given radius.

    ``record`` None starts a new mask (brush only). Refuses an edit that leaves the mask empty: deleting
    is a separate, explicit act.
    """
    if not stroke:
        raise MaskEditError("The stroke has no points.")
    if record is None and erase:
        raise MaskEditError("Choose the shape to erase from first.")
    reach = int(np.ceil(radius)) + 1
    xs, ys = [p[0] for p in stroke], [p[1] for p in stroke]
    left, top = int(np.floor(min(xs))) - reach, int(np.floor(min(ys))) - reach
    right, bottom = int(np.ceil(max(xs))) + reach, int(np.ceil(max(ys))) + reach
    if record is not None:
        shape_left, shape_top, shape_right, shape_bottom = _pixel_box(record)
        left, top = min(left, shape_left), min(top, shape_top)
        right, bottom = max(right, shape_right), max(bottom, shape_bottom)
    left, top = max(0, left), max(0, top)
    right, bottom = min(page_width, right), min(page_height, bottom)
    if right <= left or bottom <= top:
        raise MaskEditError("The stroke lies outside the page.")
    window = _window_of(record, left, top, right - left, bottom - top, page_width, page_height)
    points = np.round((np.asarray(stroke, dtype=np.float64) - (left, top)) * 16).astype(np.int32)
    value, thickness = (0 if erase else 1), max(1, int(round(2 * radius)))
    if len(points) == 1:
        cv2.circle(window, tuple(points[0]), int(round(radius * 16)), value, -1, cv2.LINE_8, 4)
    else:
        cv2.polylines(window, [points.reshape(-1, 1, 2)], False, value, thickness, cv2.LINE_8, 4)
        for point in points[[0, -1]]:
            cv2.circle(window, tuple(point), int(round(radius * 16)), value, -1, cv2.LINE_8, 4)
    if not window.any():
        raise MaskEditError("The eraser would leave nothing of the shape; delete it instead.")
    return geometry_from_window(window, left, top, page_width, page_height)


def to_polygon(record: AnnotationRecord, page_width: int, page_height: int) -> Geometry:
    """A mask's outline as an editable polygon (the polygon becomes the shape; the mask is dropped)."""
    if record.rle is None:
        raise MaskEditError("This shape is already a polygon or a box.")
    x, y, w, h = (int(v) for v in record.bbox)
    window = rasterise_window(record.rle, x, y, w + 1, h + 1)
    parts = _shifted(polygons_from_mask(window), x, y)
    if not parts:
        raise MaskEditError("The mask is too small to outline (a few pixels).")
    return Geometry(polygons=parts)


def shape_window(record: AnnotationRecord, page_width: int, page_height: int) -> tuple[np.ndarray, int, int]:
    """The shape's pixels in a window just around it: ``(mask, left, top)``."""
    left, top, right, bottom = _pixel_box(record)
    left, top, right, bottom = max(0, left), max(0, top), min(page_width, right), min(page_height, bottom)
    return _window_of(record, left, top, max(1, right - left), max(1, bottom - top), page_width, page_height), left, top


def geometry_from_window(window: np.ndarray, left: int, top: int, page_width: int, page_height: int) -> Geometry:
    """Exact whole-page RLE and pixel-edge polygons for a mask known only inside a window."""
    return Geometry(rle=rle_from_window(window, left, top, page_width, page_height),
                    polygons=_shifted(polygons_from_mask(window), left, top) or None)


def rle_from_window(window: np.ndarray, left: int, top: int, page_width: int, page_height: int) -> Rle:
    """COCO RLE of a ``page_height``×``page_width`` mask that is zero outside ``window`` (at left, top)."""
    height, width = window.shape
    padded = np.zeros((height + 2, width), dtype=np.int8)  # a zero above and below each column splits runs
    padded[1:-1] = window > 0
    changes = np.diff(padded.T.reshape(-1))  # column-major, as COCO counts
    column_length = height + 2
    starts, ends = np.flatnonzero(changes == 1) + 1, np.flatnonzero(changes == -1) + 1

    def on_page(flat: np.ndarray) -> np.ndarray:
        column, row = np.divmod(flat, column_length)
        return (left + column) * page_height + top + row - 1

    starts, ends = on_page(starts), on_page(ends)
    if len(starts):
        joined = ends[:-1] == starts[1:]  # a run down one column that goes on at the top of the next
        starts, ends = starts[np.r_[True, ~joined]], ends[np.r_[~joined, True]]
    boundaries = np.empty(2 * len(starts), dtype=np.int64)
    boundaries[0::2], boundaries[1::2] = starts, ends
    counts = np.diff(np.concatenate([[0], boundaries, [page_width * page_height]]))
    encoded = mask_utils.frPyObjects({"size": [page_height, page_width], "counts": counts.tolist()},
                                     page_height, page_width)
    return {"size": [page_height, page_width], "counts": encoded["counts"].decode("ascii")}


def _window_of(record: AnnotationRecord | None, left: int, top: int, width: int, height: int, page_width: int,
               page_height: int) -> np.ndarray:
    if record is None:
        return np.zeros((height, width), dtype=np.uint8)
    if record.rle is not None:
        return np.ascontiguousarray(rasterise_window(record.rle, left, top, width, height))
    if record.polygons:
        # The same rasterisation as everywhere else (pycocotools), of the rings moved into the window.
        shifted = _shifted(record.polygons, -left, -top)
        return np.ascontiguousarray(rasterise(shifted, None, height, width))
    window = np.zeros((height, width), dtype=np.uint8)
    x, y, w, h = record.bbox
    rows = slice(max(0, int(round(y)) - top), int(round(y + h)) - top)
    window[rows, max(0, int(round(x)) - left):int(round(x + w)) - left] = 1
    return window


def _pixel_box(record: AnnotationRecord) -> tuple[int, int, int, int]:
    """The whole pixels a shape's box touches: (left, top, right, bottom), right and bottom exclusive."""
    x, y, w, h = record.bbox
    return int(np.floor(x)), int(np.floor(y)), int(np.ceil(x + w)) + 1, int(np.ceil(y + h)) + 1


def _shifted(parts: list[dict], dx: float, dy: float) -> list[dict]:
    def move(ring: list[float]) -> list[float]:
        return [round(v + (dx if i % 2 == 0 else dy), 2) for i, v in enumerate(ring)]

    return [{"exterior": move(part["exterior"]), "holes": [move(hole) for hole in part.get("holes", [])]}
            for part in parts]
