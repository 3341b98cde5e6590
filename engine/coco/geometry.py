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
    return _runs_of_many([counts])[0]


def rasterise_window(rle: Rle, left: int, top: int, width: int, height: int) -> np.ndarray:
    """The ``(height, width)`` part of an RLE mask at (left, top), without decoding the whole page.

    A shape's box on a large page is a few thousand pixels of tens of millions: only the runs of 1s that
    reach the window are visited. Each is cut into its pieces per column, and the pieces are painted at
    once as +1/-1 marks summed down the columns.
    """
    return rasterise_windows([rle], [(left, top, width, height)])[0]


def rasterise_windows(rles: list[Rle], windows: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """:func:`rasterise_window` for many masks at once: ``windows`` holds each mask's (left, top, width,
    height). A dense page opens a thousand masks; one array pass over all of them costs what a handful
    would one by one."""
    if not rles:
        return []
    decoded = iter(_runs_of_many([rle["counts"] for rle in rles if not isinstance(rle["counts"], list)]))
    per_mask_runs = [np.asarray(rle["counts"], dtype=np.int64) if isinstance(rle["counts"], list) else next(decoded)
                     for rle in rles]
    heights = np.array([int(rle["size"][0]) for rle in rles], dtype=np.int64)
    widths = np.array([int(rle["size"][1]) for rle in rles], dtype=np.int64)
    box = np.array(windows, dtype=np.int64).reshape(-1, 4)
    left, top = np.maximum(box[:, 0], 0), np.maximum(box[:, 1], 0)
    width = np.maximum(np.minimum(box[:, 2], widths - left), 0)
    height = np.maximum(np.minimum(box[:, 3], heights - top), 0)
    # Every run of every mask, with its mask's number; the 1s are the odd runs.
    lengths = np.array([len(runs) for runs in per_mask_runs], dtype=np.int64)
    mask_of_run = np.repeat(np.arange(len(rles)), lengths)
    runs = np.concatenate(per_mask_runs)
    position = np.arange(len(runs)) - (np.cumsum(lengths) - lengths)[mask_of_run]
    ends = _segmented_cumsum(runs, lengths)
    starts = ends - runs
    ones = position % 2 == 1
    mask, starts, ends = mask_of_run[ones], starts[ones], ends[ones]
    page_height = heights[mask]
    low, high = left[mask] * page_height, (left[mask] + width[mask]) * page_height
    starts, ends = np.maximum(starts, low), np.minimum(ends, high)
    reaching = starts < ends
    mask, starts, ends, page_height = mask[reaching], starts[reaching], ends[reaching], page_height[reaching]
    first_column, first_row = np.divmod(starts, page_height)
    last_column, last_row = np.divmod(ends - 1, page_height)
    row_to = last_row + 1
    if np.any(last_column != first_column):  # runs over several columns: one piece per column
        spans = last_column - first_column + 1
        run_of_piece = np.repeat(np.arange(len(spans)), spans)
        piece_in_run = np.arange(len(run_of_piece)) - np.repeat(np.cumsum(spans) - spans, spans)
        mask, page_height = mask[run_of_piece], page_height[run_of_piece]
        first_column = first_column[run_of_piece] + piece_in_run
        first_row = np.where(piece_in_run == 0, first_row[run_of_piece], 0)
        row_to = np.where(piece_in_run == spans[run_of_piece] - 1, row_to[run_of_piece], page_height)
    # One flat buffer of all windows, column-major, each one cell longer than its window, so that a piece
    # ending at its window's foot marks that spare cell and not the next window.
    sizes = width * height + 1
    window_at = np.cumsum(sizes) - sizes
    offsets = window_at[mask] + (first_column - left[mask]) * height[mask]
    rows_from = np.clip(first_row - top[mask], 0, height[mask])
    rows_to = np.clip(row_to - top[mask], 0, height[mask])
    total = int(sizes.sum())
    painted = np.cumsum(np.bincount(offsets + rows_from, minlength=total)
                        - np.bincount(offsets + rows_to, minlength=total)) > 0
    found = []
    for at, w, h in zip(window_at.tolist(), width.tolist(), height.tolist(), strict=True):
        found.append(np.ascontiguousarray(painted[at:at + w * h].reshape(w, h).T, dtype=np.uint8))
    return found


def _segmented_cumsum(values: np.ndarray, segment_lengths: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each segment (segments of these lengths, back to back)."""
    if not len(values):
        return values.copy()
    total = np.cumsum(values)
    starts = np.cumsum(segment_lengths) - segment_lengths
    before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
    return total - np.repeat(before, segment_lengths)


def _runs_of_many(texts: list[str | bytes]) -> list[np.ndarray]:
    """:func:`rle_counts` of many compressed strings in one pass."""
    encoded = [text.encode("ascii") if isinstance(text, str) else bytes(text) for text in texts]
    if not encoded:
        return []
    chunks = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.int64) - 48
    if not len(chunks):
        return [np.zeros(0, np.int64) for _ in encoded]
    text_ends = np.cumsum([len(text) for text in encoded])
    last = (chunks & 0x20) == 0
    value_ends = np.flatnonzero(last)
    value_starts = np.concatenate([[0], value_ends[:-1] + 1])
    position_in_value = np.arange(len(chunks)) - np.repeat(value_starts, value_ends - value_starts + 1)
    values = np.add.reduceat((chunks & 0x1F) << (5 * position_in_value), value_starts)
    negative = (chunks[value_ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (value_ends[negative] - value_starts[negative] + 1))
    per_text = np.searchsorted(text_ends, value_ends, side="right")  # the string each value ends in
    counts = np.bincount(per_text, minlength=len(encoded))
    first = np.cumsum(counts) - counts
    position = np.arange(len(values)) - np.repeat(first, counts)
    runs = values.copy()
    # Each run from the third on adds to the run two before: running sums per string over odd positions,
    # and over even positions from the third run.
    for parity, begin in ((1, 1), (0, 2)):
        chosen = (position % 2 == parity) & (position >= begin)
        chosen_counts = np.bincount(per_text[chosen], minlength=len(encoded))
        runs[chosen] = _segmented_cumsum(values[chosen], chosen_counts)
    return np.split(runs, np.cumsum(counts)[:-1])


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
