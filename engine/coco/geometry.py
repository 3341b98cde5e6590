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
    """Pixel area as COCO computes it (from the rasterised shape)."""
    if rle is None and not has_holes(polygons) and polygons:
        rles = mask_utils.frPyObjects([part["exterior"] for part in polygons], height, width)
        return float(mask_utils.area(mask_utils.merge(rles)))
    return float(mask_utils.area(_for_pycocotools(rle_of(polygons, rle, height, width))))


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
