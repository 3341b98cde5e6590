"""Every supported format and mode imports, by content, with correct sizes and thumbnails."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

import samples
from engine.imaging.decode import load_page
from engine.imaging.thumbnails import THUMBNAIL_SIDE, thumbnail_path
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Image

FORMATS: list[tuple[str, Callable[[Path], Path], str, tuple[int, int], str]] = [
    ("scan.jpg", samples.write_jpeg, "JPEG", (320, 200), "RGB"),
    ("scan.png", samples.write_png, "PNG", (300, 180), "RGB"),
    ("lzw.tif", samples.write_tiff, "TIFF", (280, 190), "RGB"),
    ("jpeg.tif", lambda p: samples.write_tiff(p, compression="jpeg"), "TIFF", (280, 190), "RGB"),
    ("deep.tif", samples.write_tiff_16bit, "TIFF", (256, 128), "I;16"),
    ("bilevel.tif", samples.write_tiff_1bit, "TIFF", (400, 300), "1"),
    ("print.tif", samples.write_tiff_cmyk, "TIFF", (210, 297), "CMYK"),
    ("scan.jp2", samples.write_jpeg2000, "JPEG2000", (500, 400), "RGB"),
    ("scan.webp", samples.write_webp, "WEBP", (240, 160), "RGB"),
    ("scan.bmp", samples.write_bmp, "BMP", (200, 150), "RGB"),
]


def _only_image(project: Project) -> Image:
    with project.unit_of_work() as session:
        return session.scalars(select(Image)).one()


def _thumbnail(project: Project, image: Image) -> PILImage.Image:
    return PILImage.open(thumbnail_path(project.thumbnail_dir, image.sha256, image.page_index))


@pytest.mark.parametrize(("name", "writer", "image_format", "size", "mode"), FORMATS,
                         ids=[entry[0] for entry in FORMATS])
def test_each_format_imports_with_its_size_and_a_thumbnail(
    project: Project, tmp_path: Path, name: str, writer, image_format: str,
    size: tuple[int, int], mode: str,
) -> None:
    path = writer(tmp_path / name)
    report = import_scans(project, [path])
    assert [result.outcome for result in report.results] == [Outcome.IMPORTED]
    image = _only_image(project)
    assert (image.format, image.width, image.height, image.mode) == (image_format, *size, mode)
    assert image.path == str(path)
    thumbnail = _thumbnail(project, image)
    assert max(thumbnail.size) <= THUMBNAIL_SIDE
    assert abs(thumbnail.size[0] / thumbnail.size[1] - size[0] / size[1]) < 0.05


def test_content_decides_not_the_extension(project: Project, tmp_path: Path) -> None:
    png_named_jpg = samples.write_png(tmp_path / "actually-png.jpg")
    report = import_scans(project, [png_named_jpg])
    assert report.results[0].outcome is Outcome.IMPORTED
    assert _only_image(project).format == "PNG"


def test_multipage_tiff_gives_one_image_per_page(project: Project, tmp_path: Path) -> None:
    sizes = [(100, 80), (120, 90), (60, 200)]
    path = samples.write_multipage_tiff(tmp_path / "volume.tif", sizes)
    report = import_scans(project, [path])
    assert report.images_added == 3
    with project.unit_of_work() as session:
        pages = session.scalars(select(Image).order_by(Image.page_index)).all()
    assert [(p.page_index, p.width, p.height, p.page_count) for p in pages] == [
        (index, w, h, 3) for index, (w, h) in enumerate(sizes)
    ]
    for page, (w, h) in zip(pages, sizes, strict=True):
        thumbnail = _thumbnail(project, page)
        assert thumbnail.size == (w, h)  # small pages are not enlarged


def test_exif_orientation_is_honoured(project: Project, tmp_path: Path) -> None:
    # Stored 300x200 with red top-left; orientation 6 means "rotate 90° clockwise to view".
    path = samples.write_rotated_jpeg(tmp_path / "rotated.jpg", (300, 200), orientation=6)
    import_scans(project, [path])
    image = _only_image(project)
    assert (image.width, image.height, image.orientation) == (200, 300, 6)
    thumbnail = np.asarray(_thumbnail(project, image).convert("RGB"), dtype=int)
    height, width, _ = thumbnail.shape
    assert (width, height) == (171, 256)
    top_right = thumbnail[height // 4, 3 * width // 4]
    top_left = thumbnail[height // 4, width // 4]
    assert top_right[0] > 200 and top_right[1] < 60, "the red corner must turn to the top right"
    assert abs(top_left[0] - 128) < 30


def test_sixteen_bit_thumbnails_are_scaled_not_clipped(project: Project, tmp_path: Path) -> None:
    path = samples.write_tiff_16bit(tmp_path / "deep.tif", (256, 128))
    import_scans(project, [path])
    thumbnail = np.asarray(_thumbnail(project, _only_image(project)).convert("L"), dtype=int)
    # The source runs from 20000 to 65535: about 78 to 255 after scaling.
    assert 60 < thumbnail[:, :8].mean() < 100
    assert thumbnail[:, -8:].mean() > 240


def test_reduced_resolution_subfiles_are_not_pages_and_numbers_do_not_skip(project: Project, tmp_path: Path) -> None:
    from engine.inventory import list_images

    samples.write_tiff_with_reduced_copy(tmp_path / "volume.tif")
    import_scans(project, [tmp_path / "volume.tif"])
    rows = list_images(project)
    assert [(row.width, row.height, row.page_count) for row in rows] == [(300, 200, 2), (280, 190, 2)]
    assert [row.display_name for row in rows] == ["volume.tif — p. 1", "volume.tif — p. 2"]
    assert [row.display_name for row in list_images(project, [rows[1].id])] == ["volume.tif — p. 2"]  # relisted
    second = load_page(Path(rows[1].path), rows[1].page_index)
    assert second.size == (280, 190)  # the stored index still finds the right directory


def test_header_probe_and_reduced_thumbnail_never_decode_full_resolution(tmp_path: Path) -> None:
    # A 10000x10000 JPEG is 300 MB decoded; probing and thumbnailing must stay far below that.
    path = tmp_path / "huge.jpg"
    PILImage.new("RGB", (10_000, 10_000), (200, 180, 150)).save(path, "JPEG", quality=70)
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from engine.imaging.probe import probe\n"
        "from engine.imaging.decode import load_page\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"info = probe(Path({str(path)!r}), 'JPEG')\n"
        f"page = load_page(Path({str(path)!r}), max_side=256, image_format='JPEG')\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(info.pages[0].width, info.pages[0].height, page.size[0], (after - before) // 1024)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.split()
    width, height, thumbnail_width, grown_mb = (int(value) for value in output)
    assert (width, height, thumbnail_width) == (10_000, 10_000, 256)
    assert grown_mb < 60, f"memory grew by {grown_mb} MB: a full decode happened"


def test_jpeg2000_thumbnail_falls_back_when_reduction_is_refused(project: Project, tmp_path: Path) -> None:
    # Only two resolution levels: asking for a reduction of 3 must step down, not fail.
    path = tmp_path / "shallow.jp2"
    samples.gradient_rgb(2048, 1536).save(path, "JPEG2000", num_resolutions=2)
    report = import_scans(project, [path])
    assert report.results[0].outcome is Outcome.IMPORTED, report.results[0].reason
    assert max(_thumbnail(project, _only_image(project)).size) == THUMBNAIL_SIDE
