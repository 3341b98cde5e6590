"""A page's shapes drawn by one item: the shape layer.

A page may hold thousands of annotations. One graphics item each costs a dense page most of a second to
create and to paint the first time. The layer instead keeps the page's shapes in groups that are drawn
alike (status, category, source): one path per group holds every outline of the group, and masks keep
their tinted overlays. It paints a group with one call, and answers which shape lies under a point or inside
a rectangle through a grid of page cells.

The canvas lifts a shape out of the layer into an :class:`~gui.canvas.shapes.AnnotationItem` (handles,
moving, reshaping) while it is selected, and puts it back when it no longer is; a lifted shape is left out
of its group's path. The layer takes no mouse buttons: presses go to the view, which asks it what was hit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneHoverEvent, QStyleOptionGraphicsItem, QWidget

from engine.annotations import AnnotationRecord
from engine.store.types import AnnotationStatus
from gui.canvas.layers import Layers, source_of
from gui.canvas.outlines import Rings, overlays_of, path_of, rings_of
from gui.canvas.shapes import ShapeLook, ShapeStyle, shape_style, shape_tooltip

CELL = 256  # page pixels a side of one grid cell
# A group's outlines are kept in one path per tile of the page: an edit redraws one tile's path, not the
# whole page's, and a zoomed-in view skips the tiles out of sight.
TILE = 1024
# Cosmetic outlines are drawn a few screen pixels wide, partly outside a shape's box; at a small zoom that
# is many page pixels. The layer's bounds leave that much room around the page.
EDGE = 64.0
GroupKey = tuple[AnnotationStatus, int, str, int, int]  # drawn alike (status, category, source), and a tile


@dataclass(eq=False)
class LayerShape:
    """One shape of the layer: what drawing, hit-testing and lifting it need."""

    record: AnnotationRecord
    colour: QColor
    rings: Rings
    overlay: QImage | None
    bounds: QRectF  # page pixels
    lifted: bool = False  # drawn by its own item while selected
    shown: bool = True  # the layers (status, category, source) show it
    _path: QPainterPath | None = field(default=None, repr=False)

    @property
    def group(self) -> GroupKey:
        centre = self.bounds.center()
        return (self.record.status, self.record.category_id, source_of(self.record), int(centre.x() // TILE),
                int(centre.y() // TILE))

    @property
    def path(self) -> QPainterPath:
        if self._path is None:
            self._path = path_of([self.rings])
        return self._path



class LayerContents:
    """The shapes of a page, their groups and their grid. Made off the UI thread for a whole page (Qt's
    paths, images and colours are plain values there); the UI thread then only hands them to the layer."""

    def __init__(self) -> None:
        self.shapes: dict[int, LayerShape] = {}
        self.cells: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        self.groups: defaultdict[GroupKey, dict[int, None]] = defaultdict(dict)  # ordered sets of ids
        self.group_paths: dict[GroupKey, QPainterPath] = {}  # of the shapes not lifted; made when needed
        self.group_bounds: dict[GroupKey, QRectF] = {}  # covers every shape the group held

    def add_many(self, records: Sequence[AnnotationRecord], colours: Sequence[str]) -> None:
        parsed: dict[str, QColor] = {}
        for record, colour, rings, overlay in zip(records, colours, rings_of(records), overlays_of(records, colours),
                                                  strict=True):
            self.remove(record.id)
            x, y, w, h = record.bbox
            bounds = QRectF(x, y, w, h)
            if overlay is not None:
                bounds = bounds.united(QRectF(int(x), int(y), overlay.width(), overlay.height()))
            shape = LayerShape(record, parsed.setdefault(colour, QColor(colour)), rings, overlay, bounds)
            self.shapes[record.id] = shape
            for cell in _cells_of(bounds):
                self.cells[cell].add(record.id)
            self.groups[shape.group][record.id] = None
            self.group_paths.pop(shape.group, None)
            # May only grow: a removed shape leaves the bounds as they were (they only decide what is drawn).
            self.group_bounds[shape.group] = self.group_bounds.get(shape.group, QRectF()).united(bounds)

    def remove(self, annotation_id: int) -> LayerShape | None:
        shape = self.shapes.pop(annotation_id, None)
        if shape is not None:
            for cell in _cells_of(shape.bounds):
                self.cells[cell].discard(annotation_id)
            self.groups[shape.group].pop(annotation_id, None)
            self.group_paths.pop(shape.group, None)
        return shape

    def group_path(self, key: GroupKey) -> QPainterPath:
        path = self.group_paths.get(key)
        if path is None:
            path = self.group_paths[key] = path_of([self.shapes[i].rings for i in self.groups[key]
                                                    if not self.shapes[i].lifted])
        return path


def layer_contents(records: Sequence[AnnotationRecord], colours: dict[int, str], cancel: Any = None) -> LayerContents:
    """Outlines, mask overlays, groups and grid of a page's shapes (``colours``: category id → colour)."""
    contents = LayerContents()
    for start in range(0, len(records), 1000):
        if cancel is not None:
            cancel.raise_if_cancelled()
        block = records[start:start + 1000]
        contents.add_many(block, [colours.get(record.category_id, "#888888") for record in block])
    for key in list(contents.groups):
        contents.group_path(key)  # here, not at the first paint on the UI thread
    return contents


class ShapeLayer(QGraphicsItem):
    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self._rect = QRectF(-EDGE, -EDGE, width + 2 * EDGE, height + 2 * EDGE)
        self._contents = LayerContents()
        self._look = ShapeLook()
        self._styles: dict[tuple[object, ...], ShapeStyle] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        # Drawn once per zoom into a pixmap: panning and repainting then cost a copy, not thousands of paths.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)  # over the page and the attention map; lifted (selected) shapes are at 2

    # -- contents --------------------------------------------------------------------------

    def set_contents(self, contents: LayerContents, layers: Layers, look: ShapeLook) -> None:
        """Show these shapes instead of the ones shown."""
        self._contents = contents
        for shape in contents.shapes.values():
            shape.shown = layers.shows(shape.record)
            if shape.lifted:
                shape.lifted = False
                contents.group_paths.pop(shape.group, None)
        self._look = look
        self.update()

    def put(self, record: AnnotationRecord, colour: str, layers: Layers) -> None:
        """Add a shape, or replace the one of the same annotation."""
        self.remove(record.id)
        self._contents.add_many([record], [colour])
        shape = self._contents.shapes[record.id]
        shape.shown = layers.shows(record)
        self._changed(shape)

    def remove(self, annotation_id: int) -> None:
        shape = self._contents.remove(annotation_id)
        if shape is not None:
            self._changed(shape)

    def get(self, annotation_id: int) -> LayerShape | None:
        return self._contents.shapes.get(annotation_id)

    def shape_total(self) -> int:
        """Every shape of the page, shown or not."""
        return len(self._contents.shapes)

    def set_lifted(self, annotation_id: int, lifted: bool) -> None:
        shape = self._contents.shapes.get(annotation_id)
        if shape is not None and shape.lifted != lifted:
            shape.lifted = lifted
            self._contents.group_paths.pop(shape.group, None)
            self._changed(shape)

    def _changed(self, shape: LayerShape) -> None:
        self.update(shape.bounds.adjusted(-EDGE, -EDGE, EDGE, EDGE))

    def set_layers(self, layers: Layers) -> None:
        changed = False
        for shape in self._contents.shapes.values():
            shown = layers.shows(shape.record)
            changed = changed or shown != shape.shown
            shape.shown = shown
        if changed:
            self.update()

    def set_look(self, look: ShapeLook) -> None:
        if look != self._look:
            self._look = look
            self.update()

    def shown_count(self) -> int:
        return sum(1 for shape in self._contents.shapes.values() if shape.shown)

    def style_of(self, shape: LayerShape) -> ShapeStyle:
        key = (shape.record.status, shape.colour.rgba(), self._look)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = shape_style(shape.record.status, shape.colour, self._look, False)
        return style

    # -- finding shapes ----------------------------------------------------------------------

    def shape_at(self, point: QPointF) -> int | None:
        """The shape under ``point`` (page pixels) that a click means: the smallest of those hit, the upper
        one of two alike. Lifted and hidden shapes are not the layer's to answer for."""
        cell = (int(point.x() // CELL), int(point.y() // CELL))
        hits = []
        for annotation_id in self._contents.cells.get(cell, ()):
            shape = self._contents.shapes[annotation_id]
            if shape.shown and not shape.lifted and shape.bounds.contains(point) and (
                    shape.overlay is not None or shape.path.contains(point)):
                area = shape.bounds.width() * shape.bounds.height()
                hits.append((area, -self.style_of(shape).z, -annotation_id))
        return -min(hits)[2] if hits else None

    def ids_within(self, rect: QRectF) -> list[int]:
        """Shown shapes that ``rect`` (page pixels) touches, as a rubber band selects them."""
        return sorted(annotation_id for annotation_id in self._ids_meeting(rect)
                      if self._contents.shapes[annotation_id].shown and (
                          self._contents.shapes[annotation_id].overlay is not None
                          or self._contents.shapes[annotation_id].path.intersects(rect)))

    def _ids_meeting(self, rect: QRectF) -> set[int]:
        """Shapes whose bounds meet ``rect`` (page pixels), shown or not."""
        found: set[int] = set()
        for cell in _cells_of(rect.intersected(self._rect)):
            found.update(self._contents.cells.get(cell, ()))
        return {i for i in found if self._contents.shapes[i].bounds.intersects(rect)}

    # -- drawing -------------------------------------------------------------------------------

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        exposed = option.exposedRect
        # Dense pages (hairlines): without antialiasing a page of thousands of filled outlines paints in half
        # the time, and one-pixel lines gain nothing from it.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, not self._look.hairline)
        contents = self._contents
        for key in sorted((key for key, ids in contents.groups.items() if ids),
                          key=lambda key: (key[0] is not AnnotationStatus.PROPOSED, *key[1:])):
            if not contents.group_bounds[key].intersects(exposed):
                continue  # its path is not even made until it comes into view
            path = contents.group_path(key)
            visible = [shape for shape in map(contents.shapes.__getitem__, contents.groups[key])
                       if shape.shown and not shape.lifted]
            if not visible:
                continue
            style = self.style_of(visible[0])
            if style.overlay_opacity > 0:
                painter.setOpacity(style.overlay_opacity)
                for shape in visible:
                    if shape.overlay is not None and shape.bounds.intersects(exposed):
                        painter.drawImage(QPointF(int(shape.record.bbox[0]), int(shape.record.bbox[1])),
                                          shape.overlay)
                painter.setOpacity(1.0)
            painter.setPen(style.pen)
            painter.setBrush(style.brush)
            painter.drawPath(path)

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        under = self.shape_at(event.pos())
        self.setToolTip(shape_tooltip(self._contents.shapes[under].record) if under is not None else "")


def _cells_of(rect: QRectF) -> list[tuple[int, int]]:
    left, top = int(max(rect.left(), -EDGE) // CELL), int(max(rect.top(), -EDGE) // CELL)
    right, bottom = int(rect.right() // CELL), int(rect.bottom() // CELL)
    if left == right and top == bottom:
        return [(left, top)]  # most shapes lie in one cell: no ranges to walk for a page of thousands
    return [(x, y) for x in range(left, right + 1) for y in range(top, bottom + 1)]
