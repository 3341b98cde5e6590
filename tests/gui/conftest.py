"""Fixtures for GUI tests: a real main window on a real project, driven by real events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.coco.importer import import_coco
from engine.ingest.scan_import import import_scans
from engine.project import Project

CURATOR = "Test Curator"
DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"


@pytest.fixture
def scans_project(tmp_path: Path, shared_data: Path) -> Path:
    """A project over two shared manuscript pages (one large TIFF), with the demo's categories."""
    folder = tmp_path / "project"
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "kant_aufklaerung_1784_0017.tif"):
        shutil.copy(shared_data / "manuscripts" / name, scans / name)
    with Project.create(folder, name="Manuscripts") as project:
        import_scans(project, [scans])
        coco = json.loads((DEMO / "annotations.coco.json").read_text(encoding="utf-8"))
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] == 1]
        coco["images"] = coco["images"][:1]
        reduced = tmp_path / "bengel.coco.json"
        reduced.write_text(json.dumps(coco), encoding="utf-8")
        import_coco(project, reduced)
    return folder


@pytest.fixture
def window(qtbot):
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    main = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.close()


def open_and_wait(qtbot, window, folder: Path) -> None:
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        assert window.open_project(folder)
