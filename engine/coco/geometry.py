"""Masks and polygons in COCO's terms, computed with pycocotools.

Shapes (see ``engine.store.schema``):

* polygon parts: ``[{"exterior": [x0, y0, x1, y1, ...], "holes": [[...], ...]}, ...]``
* RLE: ``{"size": [height, width], "counts": str}`` (COCO compressed RLE)

Rasterised masks are ``uint8`` arrays of shape ``(height, width)`` with 0/1 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

Rle = dict[str, Any]
PolygonPart = dict[str, Any]


class GeometryError(ValueError):
    """A segmentation that cannot describe a shape on its image."""


@dataclass(frozen=True, slots=True)
class Shape:
    """Normalised geometry of one annotation."""

    bbox: tuple[float, float, float, float]
    polygons: list[PolygonPart] | None
    rle: Rle | None
    area: float


def _ring(values: Any, what: str) -> list[float]:
    if not isinstance(values, list) or len(values) < 6 or len(values) % 2:
        raise GeometryError(f"{what} needs at least three x,y points as a flat list of numbers")
    try:
        ring = [float(value) for value in values]
    except (TypeError, ValueError) as error:
        raise GeometryError(f"{what} holds a value that is not a number") from error
    if not all(np.isfinite(ring)):
        raise GeometryError(f"{what} holds an infinite or missing value")
    return ring


def polygons_from_coco(segmentation: list[Any]) -> list[PolygonPart]:
    """COCO polygon lists (one flat list per part, no holes) as polygon parts."""
    return [
        {"exterior": _ring(part, f"polygon part {index + 1}"), "holes": []}
        for index, part in enumerate(segmentation)
    ]


def validate_parts(parts: list[PolygonPart]) -> list[PolygonPart]:
    return [
        {
            "exterior": _ring(part.get("exterior"), "polygon exterior"),
            "holes": [_ring(hole, "polygon hole") for hole in part.get("holes", [])],
        }
        for part in parts
    ]


def rle_from_mask(mask: np.ndarray) -> Rle:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _for_pycocotools(rle: Rle) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_from_coco(segmentation: dict[str, Any], height: int, width: int) -> Rle:
    """Compressed or uncompressed COCO RLE, checked against the image size."""
    size = segmentation.get("size")
    counts = segmentation.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and [int(size[0]), int(size[1])] == [height, width]):
        raise GeometryError(f"RLE size {size} does not match the image ({height}×{width}, height×width)")
    if isinstance(counts, list):
        if sum(counts) != height * width or any(not isinstance(c, int) or c < 0 for c in counts):
            raise GeometryError("uncompressed RLE counts do not add up to the image's pixel count")
        compressed = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        return {"size": [height, width], "counts": compressed["counts"].decode("ascii")}
    if isinstance(counts, str | bytes):
        text = counts.decode("ascii") if isinstance(counts, bytes) else counts
        rle = {"size": [height, width], "counts": text}
        try:
            decoded = mask_utils.decode(_for_pycocotools(rle))
        except Exception as error:  # pycocotools raises bare exceptions for bad strings
            raise GeometryError("RLE counts cannot be decoded") from error
        if decoded.shape != (height, width):
            raise GeometryError("RLE counts do not cover the image")
        return rle
    raise GeometryError("RLE counts must be a string or a list of integers")


def rasterise(polygons: list[PolygonPart] | None, rle: Rle | None, height: int, width: int) -> np.ndarray:
    """The shape as a ``(height, width)`` uint8 mask; RLE wins when both exist."""
    if rle is not None:
        return mask_utils.decode(_for_pycocotools(rle))
    mask = np.zeros((height, width), dtype=np.uint8)
    for part in polygons or []:
        mask |= _fill([part["exterior"]], height, width)
        if part.get("holes"):
            mask &= 1 - _fill(part["holes"], height, width)
    return mask


def rle_counts(rle: Rle) -> np.ndarray:
    """The run lengths of a COCO RLE (alternating 0s and 1s, column-major), from either spelling.

    The compressed string is COCO's: 5 bits a character from "0", a continuation bit, a sign bit on
    the last character, and every run after the second stored as its difference to the run two before.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    text = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    runs: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            chunk = text[position] - 48
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            position += 1
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return np.asarray(runs, dtype=np.int64)


def rasterise_window(rle: Rle, left: int, top: int, width: int, height: int) -> np.ndarray:
    """The ``(height, width)`` part of an RLE mask at (left, top), without decoding the whole page.

    A shape's box on a large page is a few thousand pixels of tens of millions: only the runs of 1s that
    reach the window are visited, each written as a slice.
    """
    page_height, page_width = (int(v) for v in rle["size"])
    left, top = max(0, left), max(0, top)
    width, height = min(width, page_width - left), min(height, page_height - top)
    window = np.zeros((max(height, 0), max(width, 0)), dtype=np.uint8)
    if width <= 0 or height <= 0:
        return window
    ends = np.cumsum(rle_counts(rle))
    starts = np.concatenate([[0], ends[:-1]])
    low, high = left * page_height, (left + width) * page_height
    ones = [(int(s), int(e)) for s, e in zip(np.maximum(starts[1::2], low), np.minimum(ends[1::2], high),
                                            strict=False) if s < e]
    def fill(column: int, row_from: int, row_to: int) -> None:
        window[max(row_from - top, 0):max(min(row_to - top, height), 0), column - left] = 1

    for start, end in ones:
        first_column, first_row = divmod(start, page_height)
        last_column, last_row = divmod(end - 1, page_height)
        if first_column == last_column:
            fill(first_column, first_row, last_row + 1)
            continue
        fill(first_column, first_row, page_height)  # a run down to the foot of one column …
        window[:, first_column + 1 - left:last_column - left] = 1  # … whole columns …
        fill(last_column, 0, last_row + 1)  # … and on from the top of the last
    return window


def _fill(rings: list[list[float]], height: int, width: int) -> np.ndarray:
    rles = mask_utils.frPyObjects(rings, height, width)
    return mask_utils.decode(mask_utils.merge(rles))


def has_holes(polygons: list[PolygonPart] | None) -> bool:
    return any(part.get("holes") for part in polygons or [])


def rle_of(polygons: list[PolygonPart] | None, rle: Rle | None, height: int, width: int) -> Rle:
    if rle is not None:
        return rle
    return rle_from_mask(rasterise(polygons, None, height, width))


def area_of(polygons: list[PolygonPart] | None, rle: Rle | None, height: int, width: int) -> float:
    """The shape's area: a mask's pixel count; a polygon's enclosed area (holes taken out).

    A polygon's area is measured, not rasterised, so that moving a shape by any amount keeps its area
    (a rasterised area changes as edges cross pixel centres). Parts are assumed not to overlap, as
    polygons made from masks never do.
    """
    if rle is None and polygons:
        return round(sum(_enclosed(part["exterior"]) - sum(_enclosed(hole) for hole in part.get("holes", []))
                         for part in polygons), 6)
    return float(mask_utils.area(_for_pycocotools(rle_of(polygons, rle, height, width))))


def _enclosed(ring: list[float]) -> float:
    points = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    xs, ys = points[:, 0], points[:, 1]
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def bbox_of(polygons: list[PolygonPart] | None, rle: Rle | None) -> tuple[float, float, float, float]:
    """The tight box: from polygon vertices, or from the mask's pixels for RLE."""
    if rle is not None:
        x, y, w, h = mask_utils.toBbox(_for_pycocotools(rle)).tolist()
        return (float(x), float(y), float(w), float(h))
    points = np.concatenate([np.asarray(part["exterior"], dtype=np.float64) for part in polygons or []])
    xs, ys = points[0::2], points[1::2]
    return (float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min()))


def shape_from(
    *,
    bbox: tuple[float, float, float, float] | None,
    polygons: list[PolygonPart] | None,
    rle: Rle | None,
    area: float | None,
    height: int,
    width: int,
) -> Shape:
    """Complete a shape: derive whichever of bbox and area were not given."""
    if bbox is None:
        if polygons is None and rle is None:
            raise GeometryError("an annotation needs a box, a polygon or a mask")
        bbox = bbox_of(polygons, rle)
    if bbox[2] < 0 or bbox[3] < 0 or not all(np.isfinite(bbox)):
        raise GeometryError(f"box {list(bbox)} has a negative or missing width or height")
    if area is None:
        area = area_of(polygons, rle, height, width) if (polygons or rle) else bbox[2] * bbox[3]
    return Shape(bbox=bbox, polygons=polygons, rle=rle, area=float(area))
