"""Level of detail: the canvas draws previews when zoomed out and only visible tiles when zoomed in."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage, QPainter

import samples
from engine.imaging.isolated import load_full_page_shared
from engine.imaging.pyramid import TILE_SIZE, MemoryPyramid, build_levels, level_for_scale
from gui.canvas.page_item import TileCache
from gui.canvas.qimage import to_qimage
from gui.canvas.view import ImageCanvas


def _render(canvas: ImageCanvas) -> None:
    target = QImage(canvas.viewport().size(), QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(target)
    canvas.render(painter)
    painter.end()


def test_level_choice_follows_the_zoom() -> None:
    assert level_for_scale(1.0, 6) == 0
    assert level_for_scale(2.0, 6) == 0
    assert level_for_scale(0.5, 6) == 1
    assert level_for_scale(0.3, 6) == 1
    assert level_for_scale(0.01, 6) == 5


def test_zoomed_in_only_visible_tiles_are_made_and_memory_is_bounded(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    samples.gradient_rgb(6000, 4500).save(path, "JPEG", quality=85)
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(1000, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    page = canvas.show_page("large", 6000, 4500, None)
    page._cache = TileCache(budget_bytes=12 * TILE_SIZE * TILE_SIZE * 4)  # room for 12 tiles
    preview = Image.open(path)
    preview.thumbnail((2048, 2048))
    page.add_preview(to_qimage(preview))
    shared = load_full_page_shared(path)
    try:
        page.set_levels(MemoryPyramid(build_levels(shared.image)))
        canvas.fit()
        _render(canvas)
        assert page.tiles_drawn == 0, "at fit zoom the preview is sharp enough"
        canvas.set_zoom(1.0, QPointF(3000, 2250))
        _render(canvas)
        visible = page.tiles_drawn
        assert 0 < visible <= 12, "a 1000×700 view at 1:1 needs a handful of 512 px tiles"
        for step in range(30):  # pan across the page
            canvas.set_zoom(1.0, QPointF(600 + step * 160, 2250))
            _render(canvas)
        assert len(page._cache) <= 12
        assert page._cache.used_bytes <= 12 * TILE_SIZE * TILE_SIZE * 4
        centre = canvas.mapToScene(canvas.viewport().rect().center())
        pixel = canvas.viewport().grab().toImage().pixelColor(canvas.viewport().rect().center())
        expected = samples.gradient_rgb(6000, 4500).getpixel((int(centre.x()), int(centre.y())))
        assert abs(pixel.red() - expected[0]) < 12  # the tiles show the right part of the page
        assert abs(pixel.green() - expected[1]) < 12
    finally:
        page.set_levels(None)
        shared.release()
