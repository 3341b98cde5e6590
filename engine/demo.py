"""The demo project a first start opens: bundled scans with a few annotations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from engine.coco.importer import import_coco
from engine.ingest.scan_import import import_scans
from engine.paths import ASSETS_DIR, DB_FILENAME, demo_project_dir
from engine.project import Project
from engine.store.schema import Image

DEMO_ASSETS = ASSETS_DIR / "demo"
_METADATA_FIELDS = ("title", "shelfmark", "date", "rights", "notes")


def open_demo_project(folder: Path | None = None) -> Project:
    """Open the demo project, building it on first use (in the user's data folder)."""
    folder = folder or demo_project_dir()
    if (folder / DB_FILENAME).exists():
        return Project.open(folder)
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    # Build beside the final place and move in one step: a start interrupted
    # half-way never leaves a half-built demo that looks complete.
    scans = building / "scans"
    scans.mkdir(parents=True)
    for source in sorted(DEMO_ASSETS.iterdir()):
        if source.suffix.lower() in {".jpg", ".jp2", ".tif", ".png"}:
            shutil.copy2(source, scans / source.name)
    with Project.create(building, name="Marginalia demo") as project:
        import_scans(project, [scans])
        _apply_catalogue(project)
        import_coco(project, DEMO_ASSETS / "annotations.coco.json")
    # The database stores absolute paths; they must point into the final folder.
    building.rename(folder)
    project = Project.open(folder)
    with project.unit_of_work() as session:
        for image in session.scalars(select(Image)):
            image.path = str(folder / "scans" / Path(image.path).name)
    return project


def _apply_catalogue(project: Project) -> None:
    catalogue = json.loads((DEMO_ASSETS / "catalogue.json").read_text(encoding="utf-8"))
    with project.unit_of_work() as session:
        for image in session.scalars(select(Image)):
            for field, value in catalogue.get(Path(image.path).name, {}).items():
                if field in _METADATA_FIELDS:
                    setattr(image, field, value)
