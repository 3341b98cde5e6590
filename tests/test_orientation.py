"""Orientation is applied exactly once: TIFF Orientation 1-8 and EXIF 1-8 on JPEG, PNG and WebP.

Each file stores a page whose *displayed* form is known (a 60×40 picture with a
red top-left quadrant and a blue bottom-right one); the file holds those pixels
transformed by the inverse of its orientation flag, as a camera or scanner
would write them. Whatever Pillow does with the flag itself, the project must
record the displayed size and show the displayed pixels everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from engine.coco.importer import import_coco
from engine.imaging.decode import load_page
from engine.imaging.formats import require
from engine.imaging.orientation import INVERSE, apply_orientation, pillow_behaviour
from engine.imaging.thumbnails import rendition_path, thumbnail_path
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.segmentation.segmenter import PageRef, frame_pixels
from engine.store.schema import Image

DISPLAYED = (60, 40)


def _displayed_page() -> PILImage.Image:
    width, height = DISPLAYED
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[: height // 2, : width // 2] = (255, 0, 0)
    pixels[height // 2:, width // 2:] = (0, 0, 255)
    return PILImage.fromarray(pixels, "RGB")


def _write(path: Path, image_format: str, orientation: int) -> Path:
    require(image_format)
    stored = apply_orientation(_displayed_page(), INVERSE[orientation])
    if image_format == "TIFF":
        stored.save(path, "TIFF", tiffinfo={274: orientation}, compression="tiff_lzw")
    else:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        options = {"quality": 95} if image_format != "PNG" else {}
        stored.save(path, image_format, exif=exif.tobytes(), **options)
    return path


def _corners(image: PILImage.Image) -> tuple[str, str]:
    """Which colour sits in the top-left and the bottom-right quarter of an RGB picture."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    height, width = pixels.shape[:2]

    def colour(patch: np.ndarray) -> str:
        red, green, blue = patch.reshape(-1, 3).mean(axis=0)
        return "red" if red > 200 and blue < 60 else "blue" if blue > 200 and red < 60 else "grey"

    return (colour(pixels[height // 8: height // 4, width // 8: width // 4]),
            colour(pixels[3 * height // 4: 7 * height // 8, 3 * width // 4: 7 * width // 8]))


CASES = [(image_format, orientation) for image_format in ("TIFF", "JPEG", "PNG", "WEBP", "AVIF", "HEIF")
         for orientation in range(1, 9)]


@pytest.mark.parametrize(("image_format", "orientation"), CASES,
                         ids=[f"{f}-{o}" for f, o in CASES])
def test_each_orientation_is_shown_upright_everywhere(
    project: Project, tmp_path: Path, image_format: str, orientation: int,
) -> None:
    path = _write(tmp_path / f"page.{image_format.lower()}", image_format, orientation)
    report = import_scans(project, [path])
    assert [result.outcome for result in report.results] == [Outcome.IMPORTED], report.results
    with project.unit_of_work() as session:
        image = session.scalars(select(Image)).one()
    assert (image.width, image.height) == DISPLAYED
    assert image.orientation == orientation

    # Thumbnail, search rendition, preview, full page and SAM's model input are all upright.
    shown = {
        "thumbnail": PILImage.open(thumbnail_path(project.thumbnail_dir, image.sha256, 0)),
        "rendition": PILImage.open(rendition_path(project.thumbnail_dir, image.sha256, 0)),
        "preview": load_page(path, 0, max_side=30, image_format=image_format),
        "full": load_page(path, 0, image_format=image_format),
        "model input": PILImage.fromarray(frame_pixels(PageRef(image.id, path, 0, image.sha256, *DISPLAYED,
                                                                image_format), side=120)),
    }
    for what, picture in shown.items():
        assert picture.width > picture.height, f"{what} is on its side"
        assert _corners(picture) == ("red", "blue"), f"{what} is not upright"
    assert shown["full"].size == DISPLAYED

    # A COCO file made for the page as displayed is accepted, and its box stays where it was drawn.
    coco = tmp_path / "page.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": path.name, "width": DISPLAYED[0], "height": DISPLAYED[1]}],
        "categories": [{"id": 1, "name": "Red corner"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 20]}],
    }))
    outcome = import_coco(project, coco)
    assert (outcome.annotations_added, outcome.problems) == (1, [])


def test_pillow_behaviour_is_measured_not_assumed() -> None:
    # Whatever this Pillow does, size and pixels agree: a version that oriented one but
    # not the other would need its own handling, and this test would say so.
    for image_format in ("TIFF", "JPEG", "PNG", "WEBP"):
        behaviour = pillow_behaviour(image_format)
        assert behaviour.size_oriented == behaviour.pixels_oriented, (image_format, behaviour)
    assert not pillow_behaviour("BMP").pixels_oriented


def test_a_quick_look_stops_at_the_decoders_own_reduction_and_still_fits(tmp_path: Path) -> None:
    """A preview may be anything from ``least_side`` to ``max_side``: a JPEG is then halved by its decoder,
    not decoded whole and resized. Upright as the full page, and never above ``max_side``."""
    import samples

    page = tmp_path / "page.jpg"
    exif = PILImage.Exif()
    exif[0x0112] = 6  # turned a quarter: stored 1800 × 3000, shown 3000 × 1800
    samples.marked_rgb(1800, 3000).save(page, quality=90, exif=exif.tobytes())
    exact = load_page(page, max_side=2048)
    quick = load_page(page, max_side=2048, least_side=1024)
    assert max(exact.size) == 2048 and exact.size[0] > exact.size[1]  # turned: 3000 wide as displayed
    assert quick.size == (1500, 900)  # the decoder's half of 3000 × 1800, turned as the exact one
    assert np.abs(np.asarray(quick.resize(exact.size), np.int16) - np.asarray(exact, np.int16)).mean() < 6
    png = samples.write_png(tmp_path / "page.png", (3000, 1800))
    assert max(load_page(png, max_side=2048, least_side=1024).size) == 2048  # no cheap reduction: resized
    small = samples.write_jpeg(tmp_path / "small.jpg", (600, 400))
    assert load_page(small, max_side=2048, least_side=1024).size == (600, 400)  # never enlarged
