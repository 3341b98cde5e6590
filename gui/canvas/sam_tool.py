"""The SAM tool: click for a positive point, right-click (or Alt+click) for a negative one, drag for a box.

The tool only gathers the prompt and shows what comes back; the SAM controller
decodes it off the UI thread and hands the mask to :meth:`SamTool.show_mask`.
Enter accepts the mask, Tab shows SAM's next candidate, Backspace removes the
last point, Esc clears.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene

from engine.segmentation.prompts import NEGATIVE, POSITIVE, Prompt
from gui.canvas.tools import MIN_BOX_SIDE, BoxTool

PromptCallback = Callable[[Prompt | None], None]
MASK_COLOUR = QColor(30, 144, 255, 110)
MARKER_RADIUS_PX = 5.0


class SamTool(BoxTool):
    name = "sam"
    label = "SAM"

    def __init__(self, scene_getter: Callable[[], QGraphicsScene], on_prompt: PromptCallback,
                 on_accept: Callable[[], None], on_next_candidate: Callable[[], None]) -> None:
        self._on_prompt = on_prompt
        self._on_accept = on_accept
        self._on_next_candidate = on_next_candidate
        super().__init__(scene_getter, self._box_drawn)
        self.points: list[tuple[float, float, int]] = []
        self.box: tuple[float, float, float, float] | None = None
        self._negative_press = False
        self._markers: list[QGraphicsItem] = []
        self._mask_item: QGraphicsPixmapItem | None = None
        self.waiting = ""  # what the tool waits for (e.g. the page's encoding), shown in the status bar

    # -- gathering the prompt ----------------------------------------------------------

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        self._negative_press = bool(modifiers & Qt.KeyboardModifier.AltModifier)
        return super().press(point, modifiers)

    def secondary_press(self, point: QPointF) -> bool:
        self._add_point(point, NEGATIVE)
        return True

    def release(self, point: QPointF) -> bool:
        origin = self._origin
        if origin is None:
            return False
        dragged = abs(point.x() - origin.x()) >= MIN_BOX_SIDE and abs(point.y() - origin.y()) >= MIN_BOX_SIDE
        super().release(point)  # a drag becomes a box through _box_drawn
        if not dragged:
            self._add_point(origin, NEGATIVE if self._negative_press else POSITIVE)
        return True

    def _box_drawn(self, geometry: object) -> None:
        x, y, width, height = geometry.bbox  # type: ignore[attr-defined]
        self.box = (x, y, x + width, y + height)
        self._changed()

    def _add_point(self, point: QPointF, label: int) -> None:
        self.points.append((point.x(), point.y(), label))
        self._changed()

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._mask_item is not None:
            self._on_accept()
            return True
        if key == Qt.Key.Key_Tab and self._mask_item is not None:
            self._on_next_candidate()
            return True
        if key == Qt.Key.Key_Backspace and (self.points or self.box):
            if self.points:
                self.points.pop()
            else:
                self.box = None
            self._changed()
            return True
        return False

    def prompt(self) -> Prompt:
        return Prompt(points=tuple(self.points), box=self.box)

    def _changed(self) -> None:
        self._draw_markers()
        self._on_prompt(None if not self.points and self.box is None else self.prompt())

    # -- showing -------------------------------------------------------------------------

    def show_mask(self, mask: np.ndarray | None, page_size: tuple[int, int]) -> None:
        """``mask``: boolean ``[h, w]`` over the whole page at any resolution (stretched to the page)."""
        if mask is None:
            self._remove_mask()
            return
        height, width = mask.shape
        rgba = np.zeros((height, width, 4), dtype=np.uint8)
        rgba[mask] = (MASK_COLOUR.red(), MASK_COLOUR.green(), MASK_COLOUR.blue(), MASK_COLOUR.alpha())
        image = QImage(rgba.data, width, height, width * 4, QImage.Format.Format_RGBA8888).copy()
        if self._mask_item is None or self._mask_item.scene() is None:
            self._mask_item = self._scene().addPixmap(QPixmap.fromImage(image))
            self._mask_item.setZValue(15)
            self._mask_item.setTransformationMode(Qt.TransformationMode.FastTransformation)
        else:
            self._mask_item.setPixmap(QPixmap.fromImage(image))
        self._mask_item.setTransform(QTransform.fromScale(page_size[0] / width, page_size[1] / height))

    @property
    def has_mask(self) -> bool:
        return self._mask_item is not None and self._mask_item.scene() is not None

    def _draw_markers(self) -> None:
        for item in self._markers:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._markers = []
        scene = self._scene()
        for x, y, label in self.points:
            colour = QColor("#2e7d32") if label == POSITIVE else QColor("#c62828")
            marker = QGraphicsEllipseItem(QRectF(-MARKER_RADIUS_PX, -MARKER_RADIUS_PX, 2 * MARKER_RADIUS_PX,
                                                 2 * MARKER_RADIUS_PX))
            marker.setBrush(QBrush(colour))
            marker.setPen(QPen(QColor("white"), 1.5))
            marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            marker.setPos(x, y)
            marker.setZValue(21)
            scene.addItem(marker)
            self._markers.append(marker)
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            pen = QPen(QColor("#1e90ff"), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            rect = scene.addRect(QRectF(x0, y0, x1 - x0, y1 - y0), pen)
            rect.setZValue(20)
            self._markers.append(rect)

    def _remove_mask(self) -> None:
        if self._mask_item is not None and self._mask_item.scene() is not None:
            self._mask_item.scene().removeItem(self._mask_item)
        self._mask_item = None

    def clear(self) -> None:
        """Forget the prompt and the mask (after accepting, on Esc, on another page)."""
        super().cancel()
        self.points = []
        self.box = None
        self._draw_markers()
        self._remove_mask()

    def cancel(self) -> None:
        had_prompt = bool(self.points or self.box)
        self.clear()
        if had_prompt:
            self._on_prompt(None)

    @property
    def busy(self) -> bool:
        return bool(self.points or self.box or self._origin is not None)

    def status_hint(self) -> str:
        if self.waiting:
            return self.waiting
        if self.points or self.box:
            return ("Enter accepts the mask · Tab: next candidate · right-click or Alt+click excludes · "
                    "Backspace undoes the last point · Esc clears.")
        return "Click what to outline (right-click or Alt+click to exclude), or drag a box around it."


