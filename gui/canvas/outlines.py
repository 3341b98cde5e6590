"""Outlines and mask overlays of many shapes at once, for the shape layer (off the UI thread).

A dense page holds thousands of outlines of up to hundreds of points; built point by point in Python they
cost a page open a few hundred ms. Here a page's rings are read into one array, turned to one orientation
(outlines anticlockwise, holes clockwise, so that a winding fill shows holes as holes even where several
shapes share one path), and handed to Qt as the bytes of a ``QPainterPath`` in its own stream format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, qRgba

from engine.annotations import AnnotationRecord
from engine.coco.geometry import rasterise_windows
from engine.store.types import AnnotationStatus

# QDataStream's QPainterPath: int32 element count; per element int32 type (0 move, 1 line), two doubles;
# then the int32 index of the last subpath's start and the int32 fill rule.
_ELEMENT = np.dtype([("type", "<i4"), ("x", "<f8"), ("y", "<f8")])


@dataclass(frozen=True)
class Rings:
    """One shape's rings: ``coords`` (n, 2) page pixels, ``lengths`` points per ring, oriented for a
    winding fill."""

    coords: np.ndarray
    lengths: np.ndarray


def rings_of(records: Sequence[AnnotationRecord]) -> list[Rings]:
    """Each record's rings: its polygons' outlines and holes, or its box (masks: their box)."""
    return _rings_of_geometries([(record.bbox, record.polygons if record.rle is None else None)
                                 for record in records])


def geometry_path(bbox: tuple[float, float, float, float], parts: list[dict] | None) -> QPainterPath:
    """The outline of one shape: its polygon parts, or its box."""
    return path_of(_rings_of_geometries([(bbox, parts)]))


def _rings_of_geometries(geometries: Sequence[tuple[tuple[float, float, float, float], list[dict] | None]]
                         ) -> list[Rings]:
    flat: list[list[float]] = []
    holes: list[bool] = []
    rings_per_record: list[int] = []
    for (x, y, w, h), parts in geometries:
        before = len(flat)
        if parts:
            for part in parts:
                for ring, hole in [(part["exterior"], False), *((inner, True) for inner in part.get("holes", []))]:
                    if len(ring) >= 4:  # a ring needs two points to be drawn at all
                        flat.append(ring if len(ring) % 2 == 0 else ring[:-1])
                        holes.append(hole)
        else:
            flat.append([x, y, x + w, y, x + w, y + h, x, y + h])
            holes.append(False)
        rings_per_record.append(len(flat) - before)
    lengths = np.fromiter((len(ring) // 2 for ring in flat), np.int64, len(flat))
    coords = np.fromiter(chain.from_iterable(flat), np.float64, int(2 * lengths.sum())).reshape(-1, 2)
    coords = _oriented(coords, lengths, np.array(holes, dtype=bool))
    ring_split = np.cumsum(rings_per_record)[:-1]
    point_split = np.concatenate([[0], np.cumsum(lengths)])[ring_split]
    return [Rings(c, n) for c, n in zip(np.split(coords, point_split), np.split(lengths, ring_split), strict=True)]


def _oriented(coords: np.ndarray, lengths: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Rings reversed where needed: positive shoelace area (y down) for outlines, negative for holes."""
    if not len(lengths):
        return coords
    starts = np.cumsum(lengths) - lengths
    ring_of_point = np.repeat(np.arange(len(lengths)), lengths)
    following = np.arange(len(coords)) + 1
    following[starts + lengths - 1] = starts
    x, y = coords[:, 0], coords[:, 1]
    area = np.add.reduceat(x * y[following] - x[following] * y, starts)
    flip = (area < 0) != holes
    if not flip.any():
        return coords
    index_in_ring = np.arange(len(coords)) - starts[ring_of_point]
    reversed_index = starts[ring_of_point] + lengths[ring_of_point] - 1 - index_in_ring
    return coords[np.where(flip[ring_of_point], reversed_index, np.arange(len(coords)))]


def path_of(shapes: Sequence[Rings]) -> QPainterPath:
    """One path (winding fill) holding every ring of ``shapes``, each closed."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.WindingFill)
    if not shapes:
        return path
    lengths = np.concatenate([shape.lengths for shape in shapes])
    if not len(lengths):
        return path
    coords = np.concatenate([shape.coords for shape in shapes])
    rings = len(lengths)
    starts = np.cumsum(lengths) - lengths
    first_element = starts + np.arange(rings)  # each ring is its points and a closing line
    elements = np.empty(len(coords) + rings, _ELEMENT)
    elements["type"] = 1
    elements["type"][first_element] = 0
    at = np.arange(len(coords)) + np.repeat(np.arange(rings), lengths)
    elements["x"][at], elements["y"][at] = coords[:, 0], coords[:, 1]
    closing = first_element + lengths
    elements["x"][closing], elements["y"][closing] = coords[starts, 0], coords[starts, 1]
    head = np.array([len(elements)], "<i4").tobytes()
    tail = np.array([first_element[-1], int(Qt.FillRule.WindingFill.value)], "<i4").tobytes()
    data = QByteArray(head + elements.tobytes() + tail)  # held here: the stream only points at it
    stream = QDataStream(data, QIODevice.OpenModeFlag.ReadOnly)
    stream.setByteOrder(QDataStream.ByteOrder.LittleEndian)
    stream >> path
    return path


def overlays_of(records: Sequence[AnnotationRecord], colours: Sequence[str]) -> list[QImage | None]:
    """Each mask's tinted overlay, of its box's size (``None`` for shapes without a mask)."""
    masked = [index for index, record in enumerate(records) if record.rle is not None
              and record.bbox[2] > 0 and record.bbox[3] > 0]
    found: list[QImage | None] = [None] * len(records)
    windows = [(int(records[i].bbox[0]), int(records[i].bbox[1]), int(records[i].bbox[2]) + 1,
                int(records[i].bbox[3]) + 1) for i in masked]
    for index, mask in zip(masked, rasterise_windows([records[i].rle for i in masked], windows), strict=True):
        found[index] = overlay_image(mask, colours[index], records[index].status)
    return found


def overlay_image(mask: np.ndarray, colour: str, status: AnnotationStatus) -> QImage:
    """A 0/1 mask as a tint: its bytes index a two-colour table, converted to the pixmap's own format so
    that the UI thread only wraps it."""
    tint = QColor(colour)
    alpha = 70 if status is AnnotationStatus.PROPOSED else 110
    indexed = QImage(mask.data, mask.shape[1], mask.shape[0], mask.strides[0], QImage.Format.Format_Indexed8)
    indexed.setColorTable([0, qRgba(tint.red(), tint.green(), tint.blue(), alpha)])
    return indexed.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
