"""Level of detail: the canvas draws previews when zoomed out and only visible tiles when zoomed in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QPainter

import samples
from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from engine.store.types import AnnotationStatus, SourceKind
from engine.imaging.isolated import load_full_page_shared
from engine.imaging.pyramid import TILE_SIZE, MemoryPyramid, build_levels, level_for_scale
from gui.canvas.page_item import TileCache
from gui.canvas.qimage import to_qimage
from gui.canvas.view import DENSE_PAGE, ImageCanvas


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
    """Seconds: a 6000×4500 JPEG is written and decoded tile by tile, as a curator's large scan is."""
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


def test_a_turned_tiff_is_upright_on_the_canvas(qtbot, window, tmp_path: Path) -> None:
    from engine.imaging.orientation import INVERSE, apply_orientation
    from engine.ingest.scan_import import import_scans
    from engine.project import Project
    from tests.gui.conftest import open_and_wait

    displayed = samples.marked_rgb(2400, 1600)  # larger than the preview: full resolution is drawn too
    scan = tmp_path / "turned.tif"
    apply_orientation(displayed, INVERSE[6]).save(scan, "TIFF", compression="tiff_lzw", tiffinfo={274: 6})
    with Project.create(tmp_path / "project") as project:
        import_scans(project, [scan])
    open_and_wait(qtbot, window, tmp_path / "project")
    canvas = window.canvas
    for zoom in (0.2, 1.0):  # the preview, then tiles of the full page
        canvas.set_zoom(zoom, QPointF(1200, 400))
        target = QImage(canvas.viewport().size(), QImage.Format.Format_RGB32)
        painter = QPainter(target)
        canvas.render(painter)
        painter.end()
        top_left = canvas.mapFromScene(QPointF(1100, 300))  # just left of the quarter's edge at x = 1200
        right = canvas.mapFromScene(QPointF(1300, 300))
        red, grey = target.pixelColor(top_left), target.pixelColor(right)
        assert (red.red(), red.green()) == (255, 0), zoom  # the red quarter is top-left, as displayed
        assert abs(grey.red() - 128) < 10 and abs(grey.blue() - 128) < 10, zoom


def _box(annotation_id: int, status: AnnotationStatus = AnnotationStatus.PROPOSED) -> AnnotationRecord:
    now = datetime.now(UTC)
    x, y = 20 + (annotation_id % 40) * 45, 20 + (annotation_id // 40) * 30
    return AnnotationRecord(annotation_id, 1, 1, x, y, 40, 25, None, None, 1000.0, False, SourceKind.MODEL,
                            "hi-sam", "1", "", 0.5, status, "test", now, now, None, None, "", None, None)


def test_dense_pages_draw_hairline_outlines_and_the_selected_shape_stands_out(qtbot) -> None:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(900, 700)
    canvas.show()
    canvas.show_page("dense", 2000, 2000, None)
    categories = {1: CategoryRecord(1, "Word", "#e6a100", None)}

    canvas.set_annotations([_box(i) for i in range(1, 6)], categories)
    assert canvas.annotation_item(1).pen().widthF() == 2.0  # a sparse page: outlines easy to see

    dense = [_box(i) for i in range(1, DENSE_PAGE + 11)]
    canvas.set_annotations(dense, categories)
    assert {canvas.annotation_item(r.id).pen().widthF() for r in dense} == {0.0}
    centre = canvas.mapFromScene(canvas.annotation_item(7).sceneBoundingRect().center())
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert canvas.selected_ids() == [7]
    assert canvas.annotation_item(7).pen().widthF() == 3.0
    assert canvas.annotation_item(8).pen().widthF() == 0.0

    canvas.update_annotations([], [r.id for r in dense[10:]], categories)  # most deleted: sparse again
    assert canvas.annotation_item(1).pen().widthF() == 2.0
    assert canvas.annotation_item(7).pen().widthF() == 3.0
