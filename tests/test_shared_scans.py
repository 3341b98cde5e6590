"""The real sample scans in ../shared/data import with the sizes their README gives."""

import shutil
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import select

from engine.imaging.thumbnails import THUMBNAIL_SIDE, thumbnail_path
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.relink import missing_images, relink
from engine.store.schema import Image

EXPECTED = {
    "kant_aufklaerung_1784_0017.tif": ("TIFF", 1457, 2083),
    "kant_aufklaerung_1784_0020.tif": ("TIFF", 1457, 2084),
    "kant_aufklaerung_1784_0020.jp2": ("JPEG2000", 1457, 2084),
    "bengel_abriss01_1751_0007.jpg": ("JPEG", 1600, 2867),
    "dannhauer_catechismus04_1653_0585.jpg": ("JPEG", 1600, 2175),
    "SBB0000F29300010000_0002.tif": ("TIFF", 2577, 3633),
    "dibco11_PR1.png": ("PNG", 1381, 368),
    "dibco11_PR1.gt.tif": ("BMP", 1381, 368),  # BMP bytes under a .tif name
    "dibco11_PR2.gt.tif": ("BMP", 1180, 371),
    "van_gogh_starry_night_1889.jpg": ("JPEG", 1024, 640),
}


def test_the_whole_shared_folder_imports(project: Project, shared_data: Path) -> None:
    report = import_scans(project, [shared_data])
    imported = {r.path.name: r for r in report.of(Outcome.IMPORTED)}
    assert report.of(Outcome.FAILED) == []
    assert len(imported) == 13
    for name, (image_format, width, height) in EXPECTED.items():
        assert imported[name].image_format == image_format, name
        assert imported[name].page_sizes == ((width, height),), name
    ignored = {r.path.name for r in report.of(Outcome.IGNORED)}
    assert {"kant_aufklaerung_1784_0017.page.xml", "kant_aufklaerung_1784_0017.alto.xml",
            "README.md"} <= ignored
    with project.unit_of_work() as session:
        images = session.scalars(select(Image)).all()
    for image in images:
        thumbnail = PILImage.open(thumbnail_path(project.thumbnail_dir, image.sha256, 0))
        assert max(thumbnail.size) == THUMBNAIL_SIDE
        ratio = (image.width / image.height) / (thumbnail.size[0] / thumbnail.size[1])
        assert 0.95 < ratio < 1.05, image.path
    again = import_scans(project, [shared_data])
    assert len(again.of(Outcome.DUPLICATE)) == 13 and not again.of(Outcome.IMPORTED)


def test_a_moved_folder_is_relinked_by_hash(project: Project, shared_data: Path, tmp_path: Path) -> None:
    original = tmp_path / "archive" / "manuscripts"
    shutil.copytree(shared_data / "manuscripts", original)
    import_scans(project, [original])
    before = {row.id: (Path(row.path).name, row.width) for row in list_images(project)}
    assert len(before) == 6 and not missing_images(project)

    moved = tmp_path / "new-disk" / "Kant and others"
    moved.parent.mkdir()
    original.rename(moved)
    (moved / "SBB0000F29300010000_0002.tif").unlink()  # one file is really gone
    assert len(missing_images(project)) == 6

    report = relink(project, [tmp_path / "new-disk"])
    assert len(report.relinked) == 5
    assert report.still_missing == [str(original / "SBB0000F29300010000_0002.tif")]
    rows = list_images(project)
    assert {row.id: (Path(row.path).name, row.width) for row in rows} == before
    assert sum(row.missing for row in rows) == 1
    assert all(row.path.startswith(str(moved)) for row in rows if not row.missing)
