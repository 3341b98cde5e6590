"""Annotation shapes on the canvas, with draggable vertex handles.

An :class:`AnnotationItem` draws one annotation in its category's colour:
accepted ones solid, proposals dashed and paler. Boxes and polygons can be
moved and their vertices dragged (Shift+click deletes a vertex); the item
reports a finished edit through ``on_edited`` with the new geometry, and the
canvas turns that into an undoable command.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsSceneMouseEvent,
)

from engine.annotations import AnnotationRecord, Geometry
from engine.store.types import AnnotationStatus
from gui.canvas.outlines import geometry_path

HANDLE_SIZE = 8.0
# Vertex address: (part, ring, vertex); ring 0 is the exterior, 1.. the holes.
VertexKey = tuple[int, int, int]


@dataclass(frozen=True)
class ShapeLook:
    """How the shapes of a page are drawn: how strongly their insides show (0–1, the outline always in
    full), only their outlines, and hairline outlines.

    Hairlines (pen width 0: one pixel at any zoom) are for dense pages: Qt draws and bounds them without
    stroking the path, where a wider pen costs a page of thousands of outlines a few hundred ms.
    """

    opacity: float = 1.0
    outline_only: bool = False
    hairline: bool = False


@dataclass(frozen=True)
class ShapeStyle:
    """How one shape is drawn: outline, fill, its mask overlay's opacity (0: hidden) and its stacking order."""

    pen: QPen
    brush: QBrush
    overlay_opacity: float
    z: float


def shape_style(status: AnnotationStatus, colour: QColor, look: ShapeLook, selected: bool) -> ShapeStyle:
    """Accepted shapes solid, proposals dashed and paler, rejected ones grey and dotted; the selected stand out.
    One rule for the page's shape layer and for the items of selected shapes."""
    rejected = status is AnnotationStatus.REJECTED
    colour = QColor("#8A8A8A") if rejected else QColor(colour)
    pen = QPen(colour, 3.0 if selected else (0.0 if look.hairline else 2.0))
    pen.setCosmetic(True)
    fill = QColor(colour)
    if rejected:
        pen.setStyle(Qt.PenStyle.DotLine)
        alpha = 30 if selected else 0
    elif status is AnnotationStatus.PROPOSED:
        pen.setStyle(Qt.PenStyle.DashLine)
        alpha = 45 if selected else 18
    else:
        alpha = 80 if selected else 40
    fill.setAlpha(0 if look.outline_only else round(alpha * look.opacity))
    brush = QBrush(fill) if fill.alpha() else QBrush(Qt.BrushStyle.NoBrush)
    overlay_opacity = 0.0 if look.outline_only else look.opacity
    z = 2 if selected else (0.5 if status is AnnotationStatus.PROPOSED else 1)
    return ShapeStyle(pen, brush, overlay_opacity, z)


def shape_tooltip(record: AnnotationRecord) -> str:
    text = f"#{record.id} · {record.status.value} · {record.source_kind.value}"
    if record.score is not None:
        text += f" · score {record.score:.2f}"
    return text


class VertexHandle(QGraphicsRectItem):
    """A small square at a vertex; constant size on screen at any zoom."""

    def __init__(self, owner: AnnotationItem, key: VertexKey, point: QPointF) -> None:
        half = HANDLE_SIZE / 2
        super().__init__(-half, -half, HANDLE_SIZE, HANDLE_SIZE, owner)
        self.owner = owner
        self.key = key
        self.setPos(point)
        self.setBrush(QBrush(QColor("white")))
        self.setPen(QPen(QColor("#202020"), 1))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setZValue(10)
        self.setToolTip("Drag to move this point; Shift+click to delete it")
        self._dragging = False

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.owner.delete_vertex(self.key)
            event.accept()
            return
        self._dragging = True
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if self._dragging:
            self.owner.move_vertex(self.key, self.owner.mapFromScene(event.scenePos()))

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if self._dragging:
            self._dragging = False
            self.owner.finish_edit()
        event.accept()


class AnnotationItem(QGraphicsPathItem):
    def __init__(
        self,
        record: AnnotationRecord,
        colour: str,
        image_size: tuple[int, int],
        on_edited: Callable[[int, Geometry], None],
        path: QPainterPath,
        overlay: QImage | None,
    ) -> None:
        super().__init__()
        self.record = record
        self.annotation_id = record.id
        self._colour = QColor(colour)
        self._image_size = image_size
        self._on_edited = on_edited
        self._bbox = record.bbox
        self._parts = record.polygons or None  # shared with the record until an edit copies it
        self._owns_parts = False
        self._handles: list[VertexHandle] = []
        self._overlay: QGraphicsPixmapItem | None = None
        self._look = ShapeLook()
        self.editable = record.rle is None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, self.editable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)  # a move stays on the page
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setPath(path)
        if overlay is not None:
            x, y, _, _ = (int(v) for v in record.bbox)
            self._overlay = QGraphicsPixmapItem(QPixmap.fromImage(overlay), self)
            self._overlay.setPos(x, y)
            self._overlay.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._apply_style()
        self.setToolTip(shape_tooltip(self.record))

    # -- look ----------------------------------------------------------------------

    def set_look(self, look: ShapeLook) -> None:
        if look != self._look:
            self._look = look
            self._apply_style()

    def _apply_style(self) -> None:
        style = shape_style(self.record.status, self._colour, self._look, self.isSelected())
        self.setPen(style.pen)
        self.setBrush(style.brush)
        if self._overlay is not None:
            self._overlay.setVisible(style.overlay_opacity > 0)
            self._overlay.setOpacity(style.overlay_opacity)
        self.setZValue(style.z)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:  # noqa: N802
        # Only the selected shapes are items (the rest are the shape layer), so this runs for a few.
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and isinstance(value, QPointF):
            bounds = self.path().boundingRect()
            width, height = self._image_size
            x = max(min(value.x(), width - bounds.right()), -bounds.left())
            y = max(min(value.y(), height - bounds.bottom()), -bounds.top())
            return QPointF(x, y)
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self._apply_style()
            self._sync_handles()
        return super().itemChange(change, value)

    # -- editing -------------------------------------------------------------------

    def geometry(self) -> Geometry:
        if self._parts:
            return Geometry(polygons=copy.deepcopy(self._parts))
        return Geometry(bbox=self._bbox)

    def _vertices(self) -> list[tuple[VertexKey, QPointF]]:
        if self._parts:
            return [((p, r, v // 2), QPointF(ring[v], ring[v + 1]))
                    for p, part in enumerate(self._parts)
                    for r, ring in enumerate([part["exterior"], *part.get("holes", [])])
                    for v in range(0, len(ring) - 1, 2)]
        x, y, w, h = self._bbox
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        return [((0, 0, index), QPointF(cx, cy)) for index, (cx, cy) in enumerate(corners)]

    def _sync_handles(self) -> None:
        for handle in self._handles:
            handle.setParentItem(None)
            if handle.scene() is not None:
                handle.scene().removeItem(handle)
        self._handles = []
        if self.isSelected() and self.editable:
            self._handles = [VertexHandle(self, key, point) for key, point in self._vertices()]

    def _ring(self, key: VertexKey) -> list[float]:
        """The ring holding ``key``, in this item's own copy of the parts (about to be edited)."""
        assert self._parts is not None
        if not self._owns_parts:
            self._parts = copy.deepcopy(self._parts)
            self._owns_parts = True
        part = self._parts[key[0]]
        return part["exterior"] if key[1] == 0 else part["holes"][key[1] - 1]

    def _clamp(self, point: QPointF) -> tuple[float, float]:
        width, height = self._image_size
        scene = self.mapToScene(point)
        x = min(max(scene.x(), 0.0), float(width))
        y = min(max(scene.y(), 0.0), float(height))
        local = self.mapFromScene(QPointF(x, y))
        return round(local.x(), 2), round(local.y(), 2)

    def move_vertex(self, key: VertexKey, point: QPointF) -> None:
        x, y = self._clamp(point)
        if self._parts:
            ring = self._ring(key)
            ring[2 * key[2]], ring[2 * key[2] + 1] = x, y
        else:
            left, top, width, height = self._bbox
            corners = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
            opposite = corners[(key[2] + 2) % 4]
            self._bbox = (min(x, opposite[0]), min(y, opposite[1]), abs(x - opposite[0]),
                          abs(y - opposite[1]))
        self.setPath(geometry_path(self._bbox, self._parts))
        for handle, (_, position) in zip(self._handles, self._vertices(), strict=True):
            handle.setPos(position)

    def delete_vertex(self, key: VertexKey) -> None:
        if not self._parts:
            return  # a box keeps its four corners
        ring = self._ring(key)
        if len(ring) <= 6:
            return  # a ring needs three points
        del ring[2 * key[2] : 2 * key[2] + 2]
        self.setPath(geometry_path(self._bbox, self._parts))
        self.finish_edit()

    def translated_geometry(self) -> Geometry:
        """The geometry moved by the item's drag offset (``pos``), in whole page pixels.

        A fractional shift would re-sample the shape's edges, so moving it would change its
        pixels and its area; a move is meant to keep the shape as it is.
        """
        dx, dy = float(round(self.pos().x())), float(round(self.pos().y()))
        if self._parts:
            moved = [{"exterior": [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(part["exterior"])],
                      "holes": [[v + (dx if i % 2 == 0 else dy) for i, v in enumerate(hole)]
                                for hole in part.get("holes", [])]}
                     for part in self._parts]
            return Geometry(polygons=moved)
        x, y, w, h = self._bbox
        return Geometry(bbox=(x + dx, y + dy, w, h))

    def finish_edit(self) -> None:
        self._on_edited(self.annotation_id, self.translated_geometry())
