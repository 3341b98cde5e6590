"""PDFs (scanned and drawn), animated GIFs, HEIC and AVIF import with the right sizes and upright pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import samples
from engine.imaging.decode import load_page
from engine.imaging.thumbnails import thumbnail_path
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project


def _red_corner(image: PILImage.Image) -> str:
    """Where the red quarter is: 'top-left', 'top-right', ..."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    height, width = pixels.shape[:2]
    spots = {"top-left": pixels[height // 8, width // 8], "top-right": pixels[height // 8, -width // 8],
             "bottom-left": pixels[-height // 8, width // 8], "bottom-right": pixels[-height // 8, -width // 8]}
    return next(name for name, (r, g, b) in spots.items() if r > 200 and g < 60 and b < 60)


def test_a_scanned_pdf_gives_each_page_at_its_scans_own_pixels(project: Project, tmp_path: Path) -> None:
    first, second = samples.marked_rgb(600, 400), samples.marked_rgb(500, 700)
    (tmp_path / "scans").mkdir()
    pdf = samples.write_scan_pdf(tmp_path / "scans" / "volume.pdf", [first, second], dpi=150)
    report = import_scans(project, [tmp_path / "scans"])
    assert [(r.outcome, r.image_format) for r in report.results] == [(Outcome.IMPORTED, "PDF")]
    rows = list_images(project)
    assert [(row.width, row.height) for row in rows] == [(600, 400), (500, 700)]  # not resampled to 300 dpi
    assert [row.display_name for row in rows] == ["volume.pdf — p. 1", "volume.pdf — p. 2"]
    page = load_page(pdf, 1, image_format="PDF")
    assert page.size == (500, 700) and _red_corner(page) == "top-left"
    assert np.abs(np.asarray(page, dtype=np.int32) - np.asarray(second, dtype=np.int32)).mean() < 3  # JPEG only
    thumb = PILImage.open(thumbnail_path(project.thumbnail_dir, rows[0].sha256, 0))
    assert max(thumb.size) == 256 and _red_corner(thumb) == "top-left"


def test_a_searchable_pdf_with_a_turned_page_is_shown_upright(project: Project, tmp_path: Path) -> None:
    plain = samples.write_scan_pdf(tmp_path / "plain.pdf", [samples.marked_rgb(600, 400)], dpi=200)
    (tmp_path / "scans").mkdir()
    turned = samples.add_invisible_text_and_rotation(plain, tmp_path / "scans" / "ocr.pdf", rotation=90)
    plain.unlink()
    import_scans(project, [turned])
    (row,) = list_images(project)
    assert (row.width, row.height) == (400, 600)  # the scan's pixels, turned as the page says
    full, preview = load_page(turned, 0), load_page(turned, 0, max_side=120)
    assert full.size == (400, 600) and preview.size == (80, 120)
    assert _red_corner(full) == "top-right" and _red_corner(preview) == "top-right"  # a quarter turn clockwise


def test_a_drawn_pdf_page_is_rendered_at_300_dpi(project: Project, tmp_path: Path) -> None:
    pdf = samples.write_vector_pdf(tmp_path / "drawing.pdf", 144, 72)  # 2 × 1 inches
    import_scans(project, [pdf])
    (row,) = list_images(project)
    assert (row.width, row.height) == (600, 300)
    page = load_page(pdf, 0)
    assert page.size == (600, 300)
    pixels = np.asarray(page.convert("RGB"), dtype=np.int32)
    assert tuple(pixels[50, 300]) == (255, 0, 0) and tuple(pixels[250, 300]) == (255, 255, 255)


def test_bad_pdfs_fail_alone_with_reasons(project: Project, tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    good = samples.write_scan_pdf(scans / "good.pdf", [samples.marked_rgb(300, 200)])
    (scans / "damaged.pdf").write_bytes(good.read_bytes()[:200])
    (scans / "nothing.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    report = import_scans(project, [scans])
    outcomes = {result.path.name: (result.outcome, result.reason) for result in report.results}
    assert outcomes["good.pdf"][0] is Outcome.IMPORTED
    for name in ("damaged.pdf", "nothing.pdf"):
        outcome, reason = outcomes[name]
        assert outcome is Outcome.FAILED and "PDF" in reason, (name, reason)


def test_an_animated_gif_imports_its_first_frame_and_says_so(project: Project, tmp_path: Path) -> None:
    first = samples.marked_rgb(200, 120)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[samples.gradient_rgb(200, 120)], duration=100)
    (result,) = import_scans(project, [tmp_path / "anim.gif"]).results
    assert result.outcome is Outcome.IMPORTED and "first of 2 frames" in result.reason
    assert _red_corner(load_page(tmp_path / "anim.gif", 0)) == "top-left"


@pytest.mark.parametrize("suffix", ["heic", "avif"])
def test_heic_and_avif_import(project: Project, tmp_path: Path, suffix: str) -> None:
    from engine.imaging.formats import require

    require("HEIF")
    path = tmp_path / f"photo.{suffix}"
    samples.marked_rgb(200, 120).save(path)
    (result,) = import_scans(project, [path]).results
    assert result.outcome is Outcome.IMPORTED, result.reason
    assert result.page_sizes == ((200, 120),)


def test_heic_without_its_plug_in_gets_a_plain_refusal(project: Project, tmp_path: Path, monkeypatch) -> None:
    from engine.imaging import formats

    path = tmp_path / "photo.heic"
    formats.require("HEIF")
    samples.marked_rgb(200, 120).save(path)
    monkeypatch.setattr(formats, "_heif_registered", lambda: False)
    from engine.ingest.examine import examine_image  # here, not in decoder processes that have the plug-in

    result = examine_image(path, "HEIF", "0" * 64, tmp_path / "thumbs")
    assert result.outcome is Outcome.FAILED and "convert them to JPEG or TIFF" in result.reason
