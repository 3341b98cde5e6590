"""Pages too large to hold: streamed reduction and pyramid files give the same pixels as the plain path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import samples
from engine.imaging import big_pages, vips
from engine.imaging.decode import load_page
from engine.imaging.orientation import INVERSE, apply_orientation

pytestmark = pytest.mark.skipif(not vips.available(), reason="libvips is not installed here")


def _difference(a: PILImage.Image, b: PILImage.Image) -> float:
    assert a.size == b.size, (a.size, b.size)
    return float(np.abs(np.asarray(a.convert("RGB"), np.int32) - np.asarray(b.convert("RGB"), np.int32)).mean())


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_streamed_reduction_matches_the_plain_decode(tmp_path: Path, monkeypatch, suffix: str,
                                                    orientation: int) -> None:
    displayed = samples.gradient_rgb(900, 600)
    stored = apply_orientation(displayed, INVERSE[orientation])
    path = tmp_path / f"page.{suffix}"
    if suffix == "tif":
        stored.save(path, "TIFF", compression="tiff_lzw", tiffinfo={274: orientation})
    else:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        stored.save(path, "PNG", exif=exif.tobytes())
    plain = load_page(path, max_side=300)
    monkeypatch.setattr(vips, "HUGE_PIXELS", 1000)
    streamed = load_page(path, max_side=300)
    assert streamed.size == plain.size == (300, 200)
    assert _difference(streamed, plain) < 2.0


def test_without_libvips_the_plain_path_serves(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "page.png"
    samples.gradient_rgb(900, 600).save(path)
    monkeypatch.setattr(vips, "HUGE_PIXELS", 1000)
    monkeypatch.setattr(vips, "available", lambda: False)
    assert not vips.should_stream("PNG", 900, 600)
    assert not big_pages.wants_pyramid("PNG", 900, 600)
    assert load_page(path, max_side=300).size == (300, 200)


def test_a_pyramid_file_holds_the_page_at_every_level(tmp_path: Path) -> None:
    displayed = samples.gradient_rgb(1500, 1100)
    path = tmp_path / "map.tif"
    apply_orientation(displayed, INVERSE[6]).save(path, "TIFF", compression="tiff_lzw", tiffinfo={274: 6})
    built = big_pages.ensure_pyramid(path, 0, "TIFF", "a" * 64, tmp_path / "cache")
    source = vips.PyramidFile(built)
    assert source.level_size(0) == (1500, 1100)
    assert source.level_count() >= 2 and source.level_size(1)[0] in (750, 751)
    full = load_page(path, 0)
    for column, row in ((0, 0), (2, 1)):
        tile = source.tile(0, column, row)
        left, top = column * 512, row * 512
        expected = full.crop((left, top, left + tile.width, top + tile.height))
        assert _difference(tile, expected) < 3.0  # JPEG-compressed tiles
    assert source.tile(0, 2, 2).size == (1500 - 1024, 1100 - 1024)  # edge tiles are not padded
    stamp = built.stat().st_mtime_ns
    assert big_pages.ensure_pyramid(path, 0, "TIFF", "a" * 64, tmp_path / "cache") == built
    assert built.stat().st_mtime_ns >= stamp  # used again, not rebuilt from the scan


def test_the_pyramid_cache_stays_within_its_budget(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    made = []
    for index in range(3):
        path = tmp_path / f"map{index}.png"
        samples.gradient_rgb(800 + index, 600).save(path)
        made.append(big_pages.ensure_pyramid(path, 0, "PNG", f"{index}" * 64, cache, budget_bytes=1))
        os.utime(made[-1], (index + 1, index + 1))
    assert [p.exists() for p in made] == [False, False, True]  # only the newest is kept over budget


def test_the_viewer_draws_a_huge_page_from_its_pyramid_file(qtbot, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QImage, QPainter

    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.project import Project
    from gui.canvas.view import ImageCanvas
    from gui.page_loader import PageLoader
    from gui.workers import JobRunner

    monkeypatch.setattr(vips, "HUGE_PIXELS", 1_000_000)
    page_file = tmp_path / "map.png"
    samples.marked_rgb(2600, 1800).save(page_file)
    with Project.create(tmp_path / "project") as project:
        import_scans(project, [page_file])
        (row,) = list_images(project)
        canvas = ImageCanvas()
        canvas.resize(800, 600)
        canvas.show()
        qtbot.addWidget(canvas)
        loader = PageLoader(JobRunner(), pytest.fail, lambda: project.cache_dir)
        page = canvas.show_page("huge", row.width, row.height, None)
        with qtbot.waitCallback(timeout=30_000) as loaded:
            loader.on_loaded = loaded
            loader.load(row, page)
        assert isinstance(page._levels, vips.PyramidFile)  # noqa: SLF001 - which source draws is the point
        assert big_pages.pyramid_path(project.cache_dir, row.sha256, 0).is_file()
        canvas.set_zoom(1.0, QPointF(300, 300))
        target = QImage(canvas.viewport().size(), QImage.Format.Format_RGB32)
        painter = QPainter(target)
        canvas.render(painter)
        painter.end()
        centre = target.pixelColor(target.width() // 2, target.height() // 2)
        assert (centre.red(), centre.green(), centre.blue()) == pytest.approx((255, 0, 0), abs=12)  # the red quarter
        loader.cancel()
