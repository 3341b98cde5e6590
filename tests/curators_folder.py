"""A curator's folder as exports meet it: scans (two sharing a stem, one HEIC), a ground-truth PAGE file
named like a page's export, and a COCO file from another tool — and its fingerprint, to show that an export
left every one of those bytes alone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import samples
from engine.annotations import Geometry, create_annotation
from engine.categories import add_category
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project

GROUND_TRUTH = (b'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
                b'pagecontent/2019-07-15"><Page imageFilename="letter.png" imageWidth="260" imageHeight="170">'
                b'<TextRegion id="r1"><Coords points="1,1 200,1 200,100 1,100"/></TextRegion></Page></PcGts>\n')


def make_curators_folder(root: Path) -> tuple[Path, Path]:
    """``root/collection/images/`` with the scans, ``root/collection/letter.page.xml`` (ground truth) and
    ``root/collection/dataset.json`` (another tool's COCO file); a project over the scans, with a box on
    every page. Returns (the collection folder, the project folder)."""
    from engine.imaging.formats import require

    require("HEIF")
    collection = root / "collection"
    scans = collection / "images"  # where a CVAT-style export beside the collection would put its images
    scans.mkdir(parents=True)
    samples.write_png(scans / "scan.png", (300, 180))
    samples.write_jpeg(scans / "scan.jpg", (320, 200))
    samples.marked_rgb(240, 150).save(scans / "scan.heic")
    samples.write_png(scans / "letter.png", (260, 170))
    (collection / "letter.page.xml").write_bytes(GROUND_TRUTH)
    (scans / "letter.page.xml").write_bytes(GROUND_TRUTH)
    (collection / "dataset.json").write_text('{"images": [], "annotations": [], "categories": []}')
    project_folder = root / "project"
    with Project.create(project_folder) as project:
        import_scans(project, [scans])
        category = add_category(project, "initial")
        for row in list_images(project):
            create_annotation(project, image_id=row.id, category_id=category.id,
                              geometry=Geometry(bbox=(10, 10, 50, 40)), creator="curator")
    return collection, project_folder


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (the export manifest aside) with its sha256."""
    found = {}
    for parent, _folders, files in os.walk(folder):
        for name in files:
            path = Path(parent) / name
            found[os.path.relpath(path, folder)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def changed_or_gone(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The files of ``before`` that are gone or changed in ``after`` (new files do not count)."""
    return sorted(name for name, digest in before.items() if after.get(name) != digest)
