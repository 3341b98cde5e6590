"""Brush and eraser: paint pixels into the selected mask, or take them out ([ and ] change the size).

The tool only gathers the stroke (page pixels) and shows it; the canvas hands the finished stroke on,
and the labelling controller computes the new mask off the UI thread as one undoable edit.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsScene

from gui.canvas.tools import Tool

StrokeCallback = Callable[[list[tuple[float, float]], float, bool], None]  # points, radius, erase
MIN_RADIUS, MAX_RADIUS, STEP = 1.0, 400.0, 1.25


class BrushSize:
    """One size shared by the brush and the eraser, in page pixels."""

    def __init__(self, radius: float = 8.0) -> None:
        self.radius = radius

    def change(self, larger: bool) -> float:
        self.radius = min(MAX_RADIUS, max(MIN_RADIUS, self.radius * (STEP if larger else 1 / STEP)))
        return self.radius


class BrushTool(Tool):
    cursor = Qt.CursorShape.CrossCursor
    uses_default_selection = False

    def __init__(self, scene_getter: Callable[[], QGraphicsScene], on_stroke: StrokeCallback, size: BrushSize, *,
                 erase: bool) -> None:
        super().__init__(scene_getter, lambda geometry: None)
        self.erase = erase
        self.name, self.label = ("eraser", "Eraser") if erase else ("brush", "Brush")
        self._on_stroke = on_stroke
        self.size = size
        self._points: list[QPointF] = []
        self._stroke: QGraphicsPathItem | None = None
        self._ring: QGraphicsEllipseItem | None = None

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        self._points = [point]
        self._draw_stroke()
        return True

    def move(self, point: QPointF) -> bool:
        self._show_ring(point)
        if not self._points:
            return False
        if (point - self._points[-1]).manhattanLength() >= max(0.5, self.size.radius / 4):
            self._points.append(point)
            self._draw_stroke()
        return True

    def release(self, point: QPointF) -> bool:
        if not self._points:
            return False
        if point != self._points[-1]:
            self._points.append(point)
        stroke = [(round(p.x(), 2), round(p.y(), 2)) for p in self._points]
        self._clear_stroke()
        self._on_stroke(stroke, self.size.radius, self.erase)
        return True

    def key(self, key: int) -> bool:
        if key not in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            return False
        self.size.change(larger=key == Qt.Key.Key_BracketRight)
        if self._ring is not None:
            self._show_ring(self._ring.rect().center())
        return True

    def cancel(self) -> None:
        self._clear_stroke()
        if self._ring is not None and self._ring.scene() is not None:
            self._ring.scene().removeItem(self._ring)
        self._ring = None

    @property
    def busy(self) -> bool:
        return bool(self._points)

    def status_hint(self) -> str:
        what = "Drag over the selected mask to take pixels away" if self.erase else \
            "Drag to paint into the selected mask (with nothing selected: a new mask)"
        return f"{what}; [ and ] change the size ({self.size.radius:.0f} px)."

    # -- drawing --------------------------------------------------------------------------

    def _colour(self) -> QColor:
        return QColor(255, 255, 255, 150) if self.erase else QColor(255, 61, 0, 120)

    def _draw_stroke(self) -> None:
        path = QPainterPath(self._points[0])
        for point in self._points[1:]:
            path.lineTo(point)
        stroker = QPainterPathStroker()
        stroker.setWidth(2 * self.size.radius)
        stroker.setCapStyle(Qt.PenCapStyle.RoundCap)
        stroker.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        outline = stroker.createStroke(path) if len(self._points) > 1 else QPainterPath()
        if len(self._points) == 1:
            outline.addEllipse(self._points[0], self.size.radius, self.size.radius)
        if self._stroke is None:
            self._stroke = QGraphicsPathItem()
            self._stroke.setZValue(20)
            self._stroke.setPen(QPen(Qt.PenStyle.NoPen))
            self._stroke.setBrush(self._colour())
            self._scene().addItem(self._stroke)
        self._stroke.setPath(outline)

    def _clear_stroke(self) -> None:
        if self._stroke is not None and self._stroke.scene() is not None:
            self._stroke.scene().removeItem(self._stroke)
        self._stroke = None
        self._points = []

    def _show_ring(self, centre: QPointF) -> None:
        radius = self.size.radius
        if self._ring is None or self._ring.scene() is None:
            self._ring = QGraphicsEllipseItem()
            pen = QPen(QColor("#FFFFFF"), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._ring.setPen(pen)
            self._ring.setZValue(21)
            self._scene().addItem(self._ring)
        self._ring.setRect(QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius))
