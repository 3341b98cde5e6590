"""Drawing tools. The canvas hands each mouse event in scene coordinates to the active tool.

A tool returns ``True`` when it used the event; otherwise the view's default
behaviour (selecting, moving shapes, rubber-band selection) applies.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene

from engine.annotations import Geometry

DrawnCallback = Callable[[Geometry], None]
MIN_BOX_SIDE = 2.0  # page pixels; smaller drags are clicks, not boxes
CLOSE_DISTANCE_PX = 10.0  # screen pixels around the first vertex that close a polygon


def _preview_pen() -> QPen:
    pen = QPen(QColor("#FF3D00"), 2, Qt.PenStyle.DashLine)
    pen.setCosmetic(True)
    return pen


class Tool:
    name = "select"
    label = "Select"
    cursor = Qt.CursorShape.ArrowCursor
    uses_default_selection = True

    def __init__(self, scene_getter: Callable[[], QGraphicsScene], on_drawn: DrawnCallback) -> None:
        self._scene = scene_getter
        self._on_drawn = on_drawn

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        return False

    def secondary_press(self, point: QPointF) -> bool:
        """A right-button press; tools that use it return ``True``."""
        return False

    def move(self, point: QPointF) -> bool:
        return False

    def release(self, point: QPointF) -> bool:
        return False

    def double_click(self, point: QPointF) -> bool:
        return False

    def key(self, key: int) -> bool:
        return False

    def cancel(self) -> None:
        """Drop whatever is half-drawn."""

    @property
    def busy(self) -> bool:
        return False

    def status_hint(self) -> str:
        return "Click a shape to select it; drag to move; drag its points to reshape."


class SelectTool(Tool):
    pass


class BoxTool(Tool):
    name = "box"
    label = "Box"
    cursor = Qt.CursorShape.CrossCursor
    uses_default_selection = False

    def __init__(self, scene_getter: Callable[[], QGraphicsScene], on_drawn: DrawnCallback) -> None:
        super().__init__(scene_getter, on_drawn)
        self._origin: QPointF | None = None
        self._preview: QGraphicsRectItem | None = None

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        self.cancel()
        self._origin = point
        self._preview = self._scene().addRect(QRectF(point, point), _preview_pen())
        self._preview.setZValue(20)
        return True

    def move(self, point: QPointF) -> bool:
        if self._origin is None or self._preview is None:
            return False
        self._preview.setRect(QRectF(self._origin, point).normalized())
        return True

    def release(self, point: QPointF) -> bool:
        if self._origin is None:
            return False
        rect = QRectF(self._origin, point).normalized()
        self.cancel()
        if rect.width() >= MIN_BOX_SIDE and rect.height() >= MIN_BOX_SIDE:
            self._on_drawn(Geometry(bbox=(rect.x(), rect.y(), rect.width(), rect.height())))
        return True

    def cancel(self) -> None:
        if self._preview is not None and self._preview.scene() is not None:
            self._preview.scene().removeItem(self._preview)
        self._preview = None
        self._origin = None

    @property
    def busy(self) -> bool:
        return self._origin is not None

    def status_hint(self) -> str:
        return "Drag to draw a box."


class PolygonTool(Tool):
    name = "polygon"
    label = "Polygon"
    cursor = Qt.CursorShape.CrossCursor
    uses_default_selection = False

    def __init__(self, scene_getter: Callable[[], QGraphicsScene], on_drawn: DrawnCallback,
                 screen_scale: Callable[[], float]) -> None:
        super().__init__(scene_getter, on_drawn)
        self._screen_scale = screen_scale
        self._points: list[QPointF] = []
        self._cursor: QPointF | None = None
        self._preview: QGraphicsPathItem | None = None

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        if len(self._points) >= 3 and self._near_first(point):
            self.close_polygon()
            return True
        self._points.append(point)
        self._redraw()
        return True

    def move(self, point: QPointF) -> bool:
        self._cursor = point
        if self._points:
            self._redraw()
        return bool(self._points)

    def release(self, point: QPointF) -> bool:
        return bool(self._points)

    def double_click(self, point: QPointF) -> bool:
        # The double-click's first press already added its point.
        if len(self._points) >= 3:
            self.close_polygon()
        return True

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and len(self._points) >= 3:
            self.close_polygon()
            return True
        if key == Qt.Key.Key_Backspace and self._points:
            self._points.pop()
            self._redraw()
            return True
        return False

    def close_polygon(self) -> None:
        points = self._dedupe(self._points)
        self.cancel()
        if len(points) >= 3:
            flat = [round(value, 2) for point in points for value in (point.x(), point.y())]
            self._on_drawn(Geometry(polygons=[{"exterior": flat, "holes": []}]))

    def cancel(self) -> None:
        if self._preview is not None and self._preview.scene() is not None:
            self._preview.scene().removeItem(self._preview)
        self._preview = None
        self._points = []

    @property
    def busy(self) -> bool:
        return bool(self._points)

    def status_hint(self) -> str:
        if self._points:
            return (f"{len(self._points)} point(s). Click the first point, double-click or press Enter "
                    "to close; Backspace removes the last point; Esc cancels.")
        return "Click to place the polygon's points."

    def _near_first(self, point: QPointF) -> bool:
        distance = QLineF(self._points[0], point).length() * self._screen_scale()
        return distance <= CLOSE_DISTANCE_PX

    @staticmethod
    def _dedupe(points: list[QPointF]) -> list[QPointF]:
        kept: list[QPointF] = []
        for point in points:
            if not kept or QLineF(kept[-1], point).length() > 0.5:
                kept.append(point)
        return kept

    def _redraw(self) -> None:
        path = QPainterPath()
        if self._points:
            polygon = QPolygonF([*self._points, *([self._cursor] if self._cursor else [])])
            path.addPolygon(polygon)
        if self._preview is None:
            self._preview = self._scene().addPath(path, _preview_pen())
            self._preview.setZValue(20)
        else:
            self._preview.setPath(path)
