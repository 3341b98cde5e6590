"""A project with some work in it, and a fault that damages its database as a disk or a sync tool can."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import samples
from engine.annotations import Geometry, Provenance, create_annotations
from engine.categories import add_category
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.store.types import SourceKind

PAGE = 4096


def project_with_work(folder: Path, scans: Path) -> Path:
    scans.mkdir()
    with Project.create(folder) as project:
        import_scans(project, [samples.write_png(scans / "folio.png")])
        category = add_category(project, "Initial")
        (row,) = list_images(project)
        create_annotations(project, image_id=row.id, category_id=category.id, creator="curator",
                           geometries=[Geometry(bbox=(n % 250, n % 150, 20, 20)) for n in range(1500)],
                           provenances=[Provenance(SourceKind.HUMAN)] * 1500)
    Project.open(folder).close()  # the first opening keeps the good copy
    return folder


def flip_a_page(db: Path) -> None:
    """4 KB in the middle of the file, every bit inverted (a disk fault, a sync tool cut short)."""
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    pages = len(data) // PAGE
    assert pages > 8
    start = (pages // 2) * PAGE
    data[start:start + PAGE] = bytes(byte ^ 0xFF for byte in data[start:start + PAGE])
    db.write_bytes(bytes(data))
