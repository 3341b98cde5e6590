"""The page on the canvas, drawn at a level of detail that matches the zoom.

Scene coordinates are page pixels (as displayed, orientation applied). Until
the page is decoded the thumbnail stands in; a preview of at most
``PREVIEW_SIDE`` pixels serves zoomed-out views; zoomed in, tiles come from a
resolution pyramid of the full page, so only what is in view is ever turned
into pixmaps, and the pixmap cache has a fixed budget.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from typing import Protocol

from PIL import Image
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.imaging.pyramid import TILE_SIZE, level_for_scale
from gui.canvas.qimage import to_qimage

PREVIEW_SIDE = 2048
TILE_CACHE_BYTES = 192 * 1024 * 1024


class TileCache:
    """Least-recently-used tile pixmaps, bounded in bytes for the whole app."""

    def __init__(self, budget_bytes: int = TILE_CACHE_BYTES) -> None:
        self._budget = budget_bytes
        self._used = 0
        self._tiles: OrderedDict[tuple[object, ...], QPixmap] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> QPixmap | None:
        pixmap = self._tiles.get(key)
        if pixmap is not None:
            self._tiles.move_to_end(key)
        return pixmap

    def put(self, key: tuple[object, ...], pixmap: QPixmap) -> None:
        self._tiles[key] = pixmap
        self._used += _bytes(pixmap)
        while self._used > self._budget and len(self._tiles) > 1:
            _, evicted = self._tiles.popitem(last=False)
            self._used -= _bytes(evicted)

    @property
    def used_bytes(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._tiles)


def _bytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * max(1, pixmap.depth() // 8)


SHARED_TILE_CACHE = TileCache()


class TileSource(Protocol):
    """Full-resolution tiles: ``engine.imaging.pyramid.MemoryPyramid`` or ``engine.imaging.vips.PyramidFile``."""

    def level_count(self) -> int: ...

    def level_size(self, level: int) -> tuple[int, int]: ...

    def tile(self, level: int, column: int, row: int, tile_size: int = TILE_SIZE) -> Image.Image: ...


class PageItem(QGraphicsItem):
    def __init__(self, key: str, width: int, height: int, cache: TileCache = SHARED_TILE_CACHE) -> None:
        super().__init__()
        self._key = key
        self._rect = QRectF(0, 0, width, height)
        self._previews: list[QPixmap] = []
        self._levels: TileSource | None = None
        self._cache = cache
        self.tiles_drawn = 0
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setZValue(-1)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._rect

    def add_preview(self, image: QImage) -> None:
        """Add a decoded rendition (thumbnail or preview); the sharpest that suffices is drawn."""
        self._previews.append(QPixmap.fromImage(image))
        self._previews.sort(key=lambda pixmap: pixmap.width())
        self.update()

    def set_levels(self, levels: TileSource | None) -> None:
        self._levels = levels
        self.update()

    @property
    def sharpest_width(self) -> int:
        """Width in pixels of the sharpest rendition drawn so far (0 before any)."""
        return self._previews[-1].width() if self._previews else 0

    @property
    def has_full_resolution(self) -> bool:
        if self._levels is not None:
            return True
        return bool(self._previews) and self._previews[-1].width() >= self._rect.width()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        needed_width = self._rect.width() * scale
        sharp_enough = [p for p in self._previews if p.width() >= needed_width * 0.95]
        if sharp_enough or self._levels is None:
            pixmap = sharp_enough[0] if sharp_enough else (self._previews[-1] if self._previews else None)
            if pixmap is None:
                painter.fillRect(self._rect, QColor("#d8d4cc"))
                return
            painter.drawPixmap(self._rect, pixmap, QRectF(pixmap.rect()))
            return
        self._paint_tiles(painter, self._visible_part(option.exposedRect), scale)

    def _visible_part(self, exposed: QRectF) -> QRectF:
        # Exposed can be the whole page (e.g. when the view is rendered into an
        # image); never make tiles for what no view shows.
        rect = exposed.intersected(self._rect)
        views = self.scene().views() if self.scene() is not None else []
        if views:
            shown = QRectF()
            for view in views:
                shown = shown.united(view.mapToScene(view.viewport().rect()).boundingRect())
            rect = rect.intersected(shown.adjusted(-2, -2, 2, 2))
        return rect

    def _paint_tiles(self, painter: QPainter, exposed: QRectF, scale: float) -> None:
        assert self._levels is not None
        source = self._levels
        level = level_for_scale(scale, source.level_count())
        width, height = source.level_size(level)
        factor = 2 ** level
        span = TILE_SIZE * factor
        first_column, first_row = int(exposed.left() // span), int(exposed.top() // span)
        last_column = min(math.ceil(exposed.right() / span), math.ceil(width / TILE_SIZE))
        last_row = min(math.ceil(exposed.bottom() / span), math.ceil(height / TILE_SIZE))
        for row in range(first_row, last_row):
            for column in range(first_column, last_column):
                key = (self._key, level, column, row)
                pixmap = self._cache.get(key)
                if pixmap is None:
                    pixmap = QPixmap.fromImage(to_qimage(source.tile(level, column, row)))
                    self._cache.put(key, pixmap)
                target = QRectF(column * span, row * span, pixmap.width() * factor,
                                pixmap.height() * factor)
                painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
                self.tiles_drawn += 1
