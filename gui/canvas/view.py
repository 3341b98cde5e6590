"""The image canvas: zoom (wheel, +/-, fit, 1:1), pan (middle button or Space+drag), tools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from gui.canvas.brush_tool import BrushSize, BrushTool
from gui.canvas.layers import Layers
from gui.canvas.page_item import PageItem
from gui.canvas.shape_layer import LayerContents, ShapeLayer, layer_contents
from gui.canvas.shapes import AnnotationItem, ShapeLook, VertexHandle
from gui.canvas.tools import BoxTool, PolygonTool, SelectTool, Tool

MIN_ZOOM, MAX_ZOOM = 0.01, 32.0
ZOOM_STEP = 1.25

# Above this many shapes a page's outlines are hairlines (see ShapeLook).
DENSE_PAGE = 400


@dataclass(frozen=True)
class DrawnShape:
    """How one annotation is on the canvas now, whoever draws it (the shape layer, or its own item while
    selected)."""

    visible: bool
    selected: bool
    pen: QPen
    brush: QBrush
    scene_rect: QRectF


class ImageCanvas(QGraphicsView):
    annotation_drawn = Signal(object)  # Geometry
    geometry_edited = Signal(int, object)  # annotation id, Geometry
    selection_changed = Signal(list)  # annotation ids
    cursor_moved = Signal(object)  # QPointF in page pixels, or None outside the page
    zoom_changed = Signal(float)
    tool_changed = Signal(str)
    stroke_finished = Signal(list, float, bool)  # brush/eraser: points (page pixels), radius, erase

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QColor("#3b3b3b"))
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.page: PageItem | None = None
        self._image_size = (0, 0)
        self._shape_layer: ShapeLayer | None = None
        self._items: dict[int, AnnotationItem] = {}  # the lifted shapes: selected, or being pressed on
        self._categories: dict[int, CategoryRecord] = {}
        self._band_from: QPointF | None = None  # where a rubber band began, page pixels
        self._dropping = QTimer(self)  # lifted shapes no longer selected go back to the layer, once per turn
        self._dropping.setSingleShot(True)
        self._dropping.setInterval(0)
        self._dropping.timeout.connect(self._drop_unselected)
        self.rubberBandChanged.connect(self._rubber_band_moved)
        self.layers = Layers()
        self._look = ShapeLook()
        self._panning_from: QPointF | None = None
        self._space_held = False
        self._syncing_selection = False
        self._fit_mode = True
        self._tools: dict[str, Tool] = {
            "select": SelectTool(self.scene, self.annotation_drawn.emit),
            "box": BoxTool(self.scene, self.annotation_drawn.emit),
            "polygon": PolygonTool(self.scene, self.annotation_drawn.emit, self.zoom),
        }
        self.brush_size = BrushSize()
        for erase in (False, True):
            brush = BrushTool(self.scene, self.stroke_finished.emit, self.brush_size, erase=erase)
            self._tools[brush.name] = brush
        self.tool: Tool = self._tools["select"]
        self.scene().selectionChanged.connect(self._on_scene_selection)
        self._apply_tool()

    # -- page and shapes -------------------------------------------------------------

    def show_page(self, key: str, width: int, height: int, thumbnail: QImage | None) -> PageItem:
        self.tool.cancel()
        self._items.clear()
        self.scene().clear()
        self._image_size = (width, height)
        self.page = PageItem(key, width, height)
        if thumbnail is not None and not thumbnail.isNull():
            self.page.add_preview(thumbnail)
        self.scene().addItem(self.page)
        self._shape_layer = ShapeLayer(width, height)
        self.scene().addItem(self._shape_layer)
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        self.fit()
        return self.page

    def clear_page(self) -> None:
        self.tool.cancel()
        self._items.clear()
        self.scene().clear()
        self.page = None
        self._shape_layer = None

    def set_annotations(self, records: list[AnnotationRecord], categories: dict[int, CategoryRecord],
                        selected: list[int] | None = None, prepared: LayerContents | None = None) -> None:
        """Show a page's annotations; ``prepared`` holds their shapes made off the UI thread
        (:func:`~gui.canvas.shape_layer.layer_contents`)."""
        keep = set(selected if selected is not None else self.selected_ids())
        self._categories = categories
        if self._shape_layer is None:
            return
        self._syncing_selection = True
        try:
            for annotation_id in list(self._items):
                self._drop(annotation_id)
            self._look = self._look_for(len(records))
            if prepared is None:  # made here only when no job made them
                prepared = layer_contents(records, {key: category.colour for key, category in categories.items()})
            self._shape_layer.set_contents(prepared, self.layers, self._look)
            for annotation_id in keep:
                self._lift(annotation_id, select=True)
        finally:
            self._syncing_selection = False
        self.selection_changed.emit(self.selected_ids())

    def update_annotations(self, records: list[AnnotationRecord], removed: list[int],
                           categories: dict[int, CategoryRecord]) -> None:
        """Replace the shapes of ``records`` and drop those of ``removed``; leave the rest alone."""
        keep = set(self.selected_ids())
        self._categories = categories
        if self._shape_layer is None:
            return
        self._syncing_selection = True
        try:
            for annotation_id in [*removed, *(record.id for record in records)]:
                self._drop(annotation_id)
                self._shape_layer.remove(annotation_id)
            for record in records:
                self._shape_layer.put(record, self._colour(record), self.layers)
                if record.id in keep:
                    self._lift(record.id, select=True)
            self._restyle()
        finally:
            self._syncing_selection = False
        self.selection_changed.emit(self.selected_ids())

    def _colour(self, record: AnnotationRecord) -> str:
        category = self._categories.get(record.category_id)
        return category.colour if category else "#888888"

    def _lift(self, annotation_id: int, select: bool) -> AnnotationItem | None:
        """Give a shape an item of its own (handles, moving), drawn over the layer instead of in it."""
        item = self._items.get(annotation_id)
        shape = self._shape_layer.get(annotation_id) if self._shape_layer is not None else None
        if item is None and shape is not None:
            item = AnnotationItem(shape.record, shape.colour.name(), self._image_size, self.geometry_edited.emit,
                                  shape.path, shape.overlay)
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable,
                         self.tool.uses_default_selection and item.editable)
            item.set_look(self._look)
            item.setVisible(shape.shown)
            self.scene().addItem(item)
            self._items[annotation_id] = item
            self._shape_layer.set_lifted(annotation_id, True)
        if item is not None and select:
            item.setSelected(True)
        return item

    def _drop(self, annotation_id: int) -> None:
        """Put a lifted shape back into the layer."""
        item = self._items.pop(annotation_id, None)
        if item is None:
            return
        if item.scene() is not None:
            self.scene().removeItem(item)
        if self._shape_layer is not None:
            self._shape_layer.set_lifted(annotation_id, False)

    def _drop_unselected(self) -> None:
        grabbed = self.scene().mouseGrabberItem()
        for annotation_id, item in list(self._items.items()):
            if not item.isSelected() and item is not grabbed and item.pos() == QPointF(0, 0):
                self._drop(annotation_id)

    def shape_count(self) -> int:
        """Shapes shown on the page (the layers decide which)."""
        return self._shape_layer.shown_count() if self._shape_layer is not None else 0

    def set_layers(self, layers: Layers) -> None:
        self.layers = layers
        self._restyle()
        if self._shape_layer is not None:
            self._shape_layer.set_layers(layers)
        for item in self._items.values():
            item.setVisible(layers.shows(item.record))

    def _look_for(self, shape_count: int) -> ShapeLook:
        return ShapeLook(self.layers.opacity, self.layers.outline_only, hairline=shape_count > DENSE_PAGE)

    def _restyle(self) -> None:
        look = self._look_for(self._shape_layer.shape_total() if self._shape_layer is not None else 0)
        if look != self._look:
            self._look = look
            if self._shape_layer is not None:
                self._shape_layer.set_look(look)
            for item in self._items.values():
                item.set_look(look)

    def annotation_item(self, annotation_id: int) -> AnnotationItem | None:
        """The item of a lifted shape (selected, with its handles); ``None`` for a shape the layer draws."""
        return self._items.get(annotation_id)

    def drawn(self, annotation_id: int) -> DrawnShape | None:
        """How an annotation is drawn now; ``None`` when it is not on this page."""
        item = self._items.get(annotation_id)
        if item is not None:
            return DrawnShape(item.isVisible(), item.isSelected(), item.pen(), item.brush(), item.sceneBoundingRect())
        shape = self._shape_layer.get(annotation_id) if self._shape_layer is not None else None
        if shape is None:
            return None
        style = self._shape_layer.style_of(shape)
        return DrawnShape(shape.shown, False, style.pen, style.brush, shape.bounds)

    def selected_ids(self) -> list[int]:
        return sorted(item.annotation_id for item in self.scene().selectedItems() if isinstance(item, AnnotationItem))

    def select_annotations(self, ids: list[int]) -> None:
        self._syncing_selection = True
        try:
            wanted = set(ids)
            for item in self.scene().selectedItems():
                if isinstance(item, AnnotationItem) and item.annotation_id not in wanted:
                    item.setSelected(False)
            for annotation_id in wanted:
                self._lift(annotation_id, select=True)
        finally:
            self._syncing_selection = False
        if len(ids) == 1 and ids[0] in self._items:
            self.ensureVisible(self._items[ids[0]], 40, 40)
        self.selection_changed.emit(self.selected_ids())

    def _on_scene_selection(self) -> None:
        selected = self.selected_ids()
        if len(selected) < len(self._items):
            self._dropping.start()
        if not self._syncing_selection:
            self.selection_changed.emit(selected)

    def _rubber_band_moved(self, band: QRect, start: QPointF, end: QPointF) -> None:
        if not band.isNull():
            self._band_from = start

    def _lift_under(self, event: QMouseEvent) -> None:
        """A press on a shape the layer draws lifts it first, so that the view selects it and a drag moves it."""
        if self._shape_layer is None or not self.tool.uses_default_selection:
            return
        for item in self.items(event.position().toPoint()):
            if isinstance(item, AnnotationItem | VertexHandle):
                return  # already an item: the view deals with it
        hit = self._shape_layer.shape_at(self.mapToScene(event.position().toPoint()))
        if hit is not None:
            self._lift(hit, select=False)
            self._dropping.start()  # in case the press does not select it

    # -- tools -----------------------------------------------------------------------

    def add_tool(self, tool: Tool) -> None:
        """Tools that need more than the canvas (e.g. SAM, driven by its controller) register here."""
        self._tools[tool.name] = tool

    def set_tool(self, name: str) -> None:
        if name not in self._tools or self.tool is self._tools[name]:
            return
        self.tool.cancel()
        self.tool = self._tools[name]
        self._apply_tool()
        self.tool_changed.emit(name)

    def _apply_tool(self) -> None:
        self.viewport().setCursor(self.tool.cursor)
        selecting = self.tool.uses_default_selection
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag if selecting
                         else QGraphicsView.DragMode.NoDrag)
        for item in self._items.values():
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, selecting and item.editable)

    def cancel_drawing(self) -> bool:
        busy = self.tool.busy
        self.tool.cancel()
        return busy

    # -- zoom ------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        factor = min(max(factor, MIN_ZOOM), MAX_ZOOM)
        self._fit_mode = False
        centre = anchor if anchor is not None else self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.scale(factor, factor)
        self.centerOn(centre)
        self.zoom_changed.emit(factor)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def zoom_to(self, region: QRectF) -> None:
        """Show ``region`` (page pixels) as large as the view allows; it stays so when the view resizes."""
        self.fitInView(region, Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = False
        self.zoom_changed.emit(self.zoom())

    def fit(self) -> None:
        width, height = self._image_size
        if not width or not height:
            return
        self.fitInView(QRectF(0, 0, width, height), Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = True
        self.zoom_changed.emit(self.zoom())

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        target = min(max(self.zoom() * (ZOOM_STEP ** steps), MIN_ZOOM), MAX_ZOOM)
        self._fit_mode = False
        # The transformation anchor (under the mouse) keeps the pointed-at spot in place.
        ratio = target / self.zoom()
        self.scale(ratio, ratio)
        self.zoom_changed.emit(self.zoom())
        event.accept()

    # -- mouse and keys ----------------------------------------------------------------

    def _inside(self, point: QPointF) -> QPointF:
        width, height = self._image_size
        return QPointF(min(max(point.x(), 0.0), float(width)), min(max(point.y(), 0.0), float(height)))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
                self._space_held and event.button() == Qt.MouseButton.LeftButton):
            self._panning_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self._to_tool(event, lambda point: self.tool.press(point, event.modifiers())):
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._band_from = None
            self._lift_under(event)
        if self.page is not None and event.button() == Qt.MouseButton.RightButton and \
                self.tool.secondary_press(self._inside(self.mapToScene(event.position().toPoint()))):
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning_from is not None:
            delta = event.position() - self._panning_from
            self._panning_from = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            event.accept()
            return
        scene_point = self.mapToScene(event.position().toPoint())
        width, height = self._image_size
        inside = self.page is not None and 0 <= scene_point.x() < width and 0 <= scene_point.y() < height
        self.cursor_moved.emit(scene_point if inside else None)
        if self.page is not None and self.tool.move(self._inside(scene_point)):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning_from is not None and event.button() in (
                Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._panning_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space_held
                                      else self.tool.cursor)
            event.accept()
            return
        if self._to_tool(event, self.tool.release):
            return
        super().mouseReleaseEvent(event)
        self._commit_moved_items()
        if self._band_from is not None and self._shape_layer is not None:
            # To where the button was let go: the view's last band update may lag the release.
            band = QRectF(self._band_from, self.mapToScene(event.position().toPoint())).normalized()
            self._band_from = None
            chosen = set(self._shape_layer.ids_within(band))
            if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                chosen |= set(self.selected_ids())
            self.select_annotations(sorted(chosen))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._to_tool(event, self.tool.double_click):
            return
        super().mouseDoubleClickEvent(event)

    def _to_tool(self, event: QMouseEvent, handler: Callable[[QPointF], bool]) -> bool:
        """Offer a left-button event, in page pixels, to the active tool."""
        if self.page is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        if handler(self._inside(self.mapToScene(event.position().toPoint()))):
            event.accept()
            return True
        return False

    def _commit_moved_items(self) -> None:
        for item in list(self._items.values()):
            if item.pos() != QPointF(0, 0):
                self.geometry_edited.emit(item.annotation_id, item.translated_geometry())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self.tool.key(event.key()):
            event.accept()
            return
        super().keyPressEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002
        # While a tool is working, Tab belongs to it (SAM: the next candidate mask).
        if self.tool.busy:
            return False
        return super().focusNextPrevChild(next)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self.viewport().setCursor(self.tool.cursor)
            event.accept()
            return
        super().keyReleaseEvent(event)
