"""From a full-resolution mask to what annotations store: exact RLE, editable polygons, box, area."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.coco.geometry import PolygonPart, Rle, area_of, bbox_of, rasterise, rle_from_mask

MIN_PART_AREA = 4.0  # pixels; specks below this are noise, not parts of the shape


@dataclass(frozen=True, slots=True)
class MaskShape:
    rle: Rle
    polygons: list[PolygonPart]
    bbox: tuple[float, float, float, float]
    area: float


def polygons_from_mask(mask: np.ndarray, tolerance: float = 0.5) -> list[PolygonPart]:
    """Outer contours with their holes, simplified to within ``tolerance`` pixels.

    Coordinates are pixel edges (COCO's convention: a one-pixel mask at (x, y)
    spans x..x+1), so thin strokes keep their width. Several parts and holes
    inside parts are kept.
    """
    binary = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    parts: list[PolygonPart] = []
    for index, contour in enumerate(contours):
        if hierarchy[0][index][3] != -1:
            continue  # a hole: collected with its parent below
        exterior = _ring(contour, tolerance, grow=0.5)
        if exterior is None:
            continue
        holes = []
        child = hierarchy[0][index][2]
        while child != -1:
            hole = _ring(contours[child], tolerance, grow=-0.5)
            if hole is not None:
                holes.append(hole)
            child = hierarchy[0][child][0]
        parts.append({"exterior": exterior, "holes": holes})
    return parts


def _ring(contour: np.ndarray, tolerance: float, grow: float) -> list[float] | None:
    if cv2.contourArea(contour) < MIN_PART_AREA and len(contour) < 8:
        return None
    simplified = cv2.approxPolyDP(contour, tolerance, True) if tolerance > 0 else contour
    points = simplified.reshape(-1, 2).astype(np.float64) + 0.5  # pixel centres, in pixel-edge coordinates
    if len(points) < 3:
        return None
    # Contours run through the centres of the boundary pixels: move each edge half a pixel
    # outwards (inwards for holes) so the polygon encloses whole pixels.
    points = _offset(points, grow)
    return [round(float(v), 2) for v in points.reshape(-1)]


def _offset(points: np.ndarray, distance: float) -> np.ndarray:
    """Mitred offset of a closed ring: positive grows the enclosed area, negative shrinks it."""
    following = np.roll(points, -1, axis=0)
    edges = following - points
    lengths = np.linalg.norm(edges, axis=1, keepdims=True)
    lengths[lengths == 0] = 1.0
    twice_area = float(np.sum(points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]))
    normals = np.sign(twice_area or 1.0) * np.stack([edges[:, 1], -edges[:, 0]], axis=1) / lengths
    before = np.roll(normals, 1, axis=0)  # the normal of the edge arriving at each vertex
    agreement = np.maximum(1.0 + np.sum(before * normals, axis=1, keepdims=True), 0.25)  # caps spikes
    return points + distance * (before + normals) / agreement


def shape_of_mask(mask: np.ndarray, tolerance: float = 0.5) -> MaskShape:
    """Exact RLE (the truth), polygons for editing, and box and area from the mask itself."""
    height, width = mask.shape
    rle = rle_from_mask(mask)
    return MaskShape(rle=rle, polygons=polygons_from_mask(mask, tolerance), bbox=bbox_of(None, rle),
                     area=area_of(None, rle, height, width))


def iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def polygon_iou(shape: MaskShape) -> float:
    """How well the editable polygons reproduce the exact mask (1.0 = the same pixels)."""
    height, width = shape.rle["size"]
    return iou(rasterise(shape.polygons, None, height, width) > 0, rasterise(None, shape.rle, height, width) > 0)
