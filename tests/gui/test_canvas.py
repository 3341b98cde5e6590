"""Level of detail: the canvas draws previews when zoomed out and only visible tiles when zoomed in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
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


WORDS = {1: CategoryRecord(1, "Word", "#e6a100", None)}  # one category for the shapes of these tests


def _page_canvas(qtbot, key: str, page_side: int, view: tuple[int, int] = (900, 700)) -> ImageCanvas:
    """A shown canvas holding an empty square page."""
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(*view)
    canvas.show()
    canvas.show_page(key, page_side, page_side, None)
    return canvas


def test_dense_pages_draw_hairline_outlines_and_the_selected_shape_stands_out(qtbot) -> None:
    canvas = _page_canvas(qtbot, "dense", 2000)
    categories = WORDS

    canvas.set_annotations([_box(i) for i in range(1, 6)], categories)
    assert canvas.drawn(1).pen.widthF() == 2.0  # a sparse page: outlines easy to see

    dense = [_box(i) for i in range(1, DENSE_PAGE + 11)]
    canvas.set_annotations(dense, categories)
    assert {canvas.drawn(r.id).pen.widthF() for r in dense} == {0.0}
    centre = canvas.mapFromScene(canvas.drawn(7).scene_rect.center())
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert canvas.selected_ids() == [7]
    assert canvas.drawn(7).pen.widthF() == 3.0
    assert canvas.drawn(8).pen.widthF() == 0.0

    canvas.update_annotations([], [r.id for r in dense[10:]], categories)  # most deleted: sparse again
    assert canvas.drawn(1).pen.widthF() == 2.0
    assert canvas.drawn(7).pen.widthF() == 3.0


def _record(annotation_id: int, bbox: tuple[float, float, float, float],
            status: AnnotationStatus = AnnotationStatus.ACCEPTED) -> AnnotationRecord:
    now = datetime.now(UTC)
    return AnnotationRecord(annotation_id, 1, 1, *bbox, None, None, bbox[2] * bbox[3], False, SourceKind.HUMAN,
                            None, None, "", None, status, "test", now, now, None, None, "", None, None)


def _dense_canvas(qtbot, count: int) -> tuple[ImageCanvas, list[AnnotationRecord]]:
    canvas = _page_canvas(qtbot, "dense", 2000)
    records = [_box(i, AnnotationStatus.ACCEPTED) for i in range(1, count + 1)]
    canvas.set_annotations(records, WORDS)
    return canvas, records


def test_a_dense_page_is_one_layer_and_only_the_selected_shapes_get_items(qtbot) -> None:
    """Issue 27, 14: 3,000 shapes are drawn by one item; a click lifts the shape it hits into an item of its
    own (selected, movable), and it goes back into the layer when another is chosen."""
    canvas, records = _dense_canvas(qtbot, 3000)
    assert len(canvas.scene().items()) == 2  # the page and the shape layer
    assert canvas.shape_count() == 3000
    _render(canvas)
    target = records[41]
    centre = canvas.mapFromScene(canvas.drawn(target.id).scene_rect.center())
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert canvas.selected_ids() == [target.id]
    assert canvas.annotation_item(target.id) is not None and canvas.drawn(target.id).selected
    other = canvas.mapFromScene(canvas.drawn(records[43].id).scene_rect.center())
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=other)
    qtbot.waitUntil(lambda: canvas.annotation_item(target.id) is None, timeout=1_000)  # back in the layer
    assert canvas.selected_ids() == [records[43].id] and not canvas.drawn(target.id).selected
    assert len(canvas.scene().items()) == 2 + 1 + 4  # page, layer, the selected shape and its four handles


def test_a_press_on_a_layer_shape_drags_it_in_the_same_gesture(qtbot) -> None:
    canvas, records = _dense_canvas(qtbot, 500)
    edited: list[tuple[int, object]] = []
    canvas.geometry_edited.connect(lambda annotation_id, geometry: edited.append((annotation_id, geometry)))
    target = records[80]
    start = canvas.mapFromScene(canvas.drawn(target.id).scene_rect.center())
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(canvas.viewport(), start + type(start)(step * 8, step * 4))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start + type(start)(40, 20))
    assert [annotation_id for annotation_id, _ in edited] == [target.id]
    x, y, w, h = edited[0][1].bbox
    zoom = canvas.zoom()
    assert (x - target.bbox[0]) == round(40 / zoom) or abs((x - target.bbox[0]) - 40 / zoom) <= 1
    assert abs((y - target.bbox[1]) - 20 / zoom) <= 1 and (w, h) == target.bbox[2:]


def test_a_click_means_the_smallest_shape_under_it_and_a_rubber_band_takes_what_it_touches(qtbot) -> None:
    canvas = _page_canvas(qtbot, "nested", 1000)
    region, initial, word = _record(1, (100, 100, 600, 600)), _record(2, (200, 200, 100, 100)), \
        _record(3, (220, 220, 20, 10))
    far = _record(4, (850, 850, 50, 50))
    canvas.set_annotations([region, initial, word, far], WORDS)
    for record, point in ((word, (230, 225)), (initial, (280, 280)), (region, (600, 600))):
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(*point)))
        assert canvas.selected_ids() == [record.id], record
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(950, 50)))
    assert canvas.selected_ids() == []
    begin, end = canvas.mapFromScene(QPointF(50, 50)), canvas.mapFromScene(QPointF(235, 225))  # from bare page
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=begin)
    for step in range(1, 9):
        qtbot.mouseMove(canvas.viewport(), begin + (end - begin) * step / 8)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert canvas.selected_ids() == [1, 2, 3]  # the band touches the region, the initial and the word


def test_hidden_and_rejected_shapes_are_neither_drawn_nor_hit(qtbot) -> None:
    canvas = _page_canvas(qtbot, "hidden", 500, (600, 600))
    kept, rejected = _record(1, (50, 50, 100, 100)), _record(2, (300, 300, 100, 100), AnnotationStatus.REJECTED)
    canvas.set_annotations([kept, rejected], WORDS)
    assert canvas.shape_count() == 1 and not canvas.drawn(2).visible
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(350, 350)))
    assert canvas.selected_ids() == []
    image = QImage(canvas.viewport().size(), QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    canvas.render(painter)
    painter.end()
    inside_kept, inside_rejected = canvas.mapFromScene(QPointF(100, 100)), canvas.mapFromScene(QPointF(350, 350))
    background = image.pixelColor(canvas.mapFromScene(QPointF(250, 20)))
    assert image.pixelColor(inside_kept) != background  # its tinted inside is drawn
    assert image.pixelColor(inside_rejected) == background


def test_the_full_resolution_waits_for_the_shapes_when_asked(qtbot, tmp_path: Path) -> None:
    """On two cores a dense page's shapes come before the decoding that only matters zoomed in: the preview
    at once, the full resolution once the shapes are shown."""
    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.project import Project
    from gui.page_loader import PageLoader
    from gui.workers import JobRunner

    page_file = tmp_path / "page.jpg"
    samples.marked_rgb(3000, 2000).save(page_file, quality=85)
    with Project.create(tmp_path / "project") as project:
        import_scans(project, [page_file])
        (row,) = list_images(project)
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    jobs = JobRunner()
    loader = PageLoader(jobs, pytest.fail, lambda: None)
    loaded: list[bool] = []
    loader.on_loaded = lambda: loaded.append(True)
    page = canvas.show_page("held", row.width, row.height, None)
    loader.load(row, page, after_shapes=True)
    qtbot.waitUntil(lambda: page.sharpest_width > 256, timeout=30_000)  # the preview
    assert 1000 <= page.sharpest_width <= 2048
    qtbot.wait(300)
    assert not loaded and not page.has_full_resolution and jobs.wait(5_000)  # nothing else under way
    loader.shapes_shown()
    qtbot.waitUntil(lambda: bool(loaded), timeout=30_000)
    assert page.has_full_resolution
    loader.cancel()


def test_a_shape_dragged_past_the_page_edge_stops_at_it(qtbot) -> None:
    canvas = _page_canvas(qtbot, "edge", 1000, (700, 700))
    canvas.set_annotations([_record(1, (700, 700, 200, 100))], WORDS)
    edited: list[object] = []
    canvas.geometry_edited.connect(lambda annotation_id, geometry: edited.append(geometry))
    start = canvas.mapFromScene(QPointF(800, 750))
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 9):
        qtbot.mouseMove(canvas.viewport(), start + type(start)(step * 30, step * 30))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start + type(start)(240, 240))
    (moved,) = edited
    x, y, w, h = moved.bbox
    assert (x + w, y + h) == (1000, 1000) and (w, h) == (200, 100)  # against the corner, not past it
