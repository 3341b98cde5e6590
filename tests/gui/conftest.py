"""Fixtures for GUI tests: a real main window on a real project, driven by real events."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.coco.importer import import_coco
from engine.ingest.scan_import import import_scans
from engine.project import Project

CURATOR = "Test Curator"
DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"


def _make_scans_project(root: Path, shared_data: Path) -> Path:
    folder = root / "project"
    scans = root / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "kant_aufklaerung_1784_0017.tif"):
        shutil.copy(shared_data / "manuscripts" / name, scans / name)
    with Project.create(folder, name="Manuscripts") as project:
        import_scans(project, [scans])
        coco = json.loads((DEMO / "annotations.coco.json").read_text(encoding="utf-8"))
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] == 1]
        coco["images"] = coco["images"][:1]
        reduced = root / "bengel.coco.json"
        reduced.write_text(json.dumps(coco), encoding="utf-8")
        import_coco(project, reduced)
    return folder


@pytest.fixture(scope="session")
def _scans_project_template(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("scans-project-template")
    _make_scans_project(root, shared_data)
    return root


@pytest.fixture
def scans_project(tmp_path: Path, _scans_project_template: Path) -> Path:
    """A project over two shared manuscript pages (one large TIFF), with the demo's categories, in
    ``tmp_path / "project"`` over ``tmp_path / "scans"``: a copy of one made by importing them (once per
    worker), its pages pointed at the copied scans (their sizes and times kept, as the project checks)."""
    root = _scans_project_template
    for name in ("scans", "project"):
        shutil.copytree(root / name, tmp_path / name)
    shutil.copy2(root / "bengel.coco.json", tmp_path / "bengel.coco.json")
    with contextlib.closing(sqlite3.connect(tmp_path / "project" / "project.sqlite")) as database, database:
        for image_id, path in database.execute("SELECT id, path FROM image").fetchall():
            moved = tmp_path / "scans" / Path(path).relative_to(root / "scans")
            database.execute("UPDATE image SET path = ? WHERE id = ?", (str(moved), image_id))
    return tmp_path / "project"


def shown_window(qtbot):
    """A real main window, shown; the caller closes it."""
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    main = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    return main


@pytest.fixture
def window(qtbot):
    main = shown_window(qtbot)
    yield main
    main.close()


def add_rectangle_mask(folder: Path, rows: slice, columns: slice):
    """A SAM-like RLE mask (a rectangle) on the project's JPEG page: its record, pixels and page."""
    import numpy as np

    from engine.annotations import Geometry, create_annotation
    from engine.categories import list_categories
    from engine.coco.geometry import rle_from_mask
    from engine.inventory import list_images

    with Project.open(folder) as project:
        page = next(p for p in list_images(project) if p.path.endswith(".jpg"))
        mask = np.zeros((page.height, page.width), dtype=np.uint8)
        mask[rows, columns] = 1
        record = create_annotation(project, image_id=page.id, category_id=list_categories(project)[0].id,
                                   geometry=Geometry(rle=rle_from_mask(mask)), creator="sam")
    return record, mask, page


def open_and_wait(qtbot, window, folder: Path) -> None:
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        assert window.open_project(folder)
