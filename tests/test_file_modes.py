"""Files Marginalia writes get ordinary permissions: the umask's for new files, their own for replaced ones."""

from __future__ import annotations

import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

import samples
from engine import fileio
from engine.categories import add_category
from engine.coco.exporter import export_coco
from engine.imaging.thumbnails import thumbnail_path
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


@pytest.fixture
def umask(monkeypatch: pytest.MonkeyPatch):
    def set_umask(value: int) -> None:
        previous = os.umask(value)
        monkeypatch.setattr(fileio, "_umask", None)
        restore.append(previous)

    restore: list[int] = []
    yield set_umask
    if restore:
        os.umask(restore[0])
    fileio._umask = None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_exports_and_thumbnails_follow_the_umask(project: Project, tmp_path: Path, umask) -> None:
    umask(0o002)  # a group-shared drive
    # Decoder processes take the umask when they start (as the app's do); this test's own starts now.
    with ThreadPoolExecutor(1) as pool:
        import_scans(project, [samples.write_png(tmp_path / "folio.png")], pool=pool)
    out = tmp_path / "export.json"
    export_coco(project, out)
    assert _mode(out) == 0o664
    with project.unit_of_work() as session:
        image = session.scalars(select(Image)).one()
    assert _mode(thumbnail_path(project.thumbnail_dir, image.sha256, 0)) == 0o664


def test_a_replaced_file_keeps_its_own_permissions(project: Project, tmp_path: Path, umask) -> None:
    umask(0o077)
    out = tmp_path / "export.json"
    export_coco(project, out)
    os.chmod(out, 0o664)
    add_category(project, "added since")
    export_coco(project, out, overwrite=True)  # what the earlier export wrote is replaced
    assert _mode(out) == 0o664
    assert "added since" in out.read_text()
    fresh = tmp_path / "fresh.json"
    export_coco(project, fresh)
    assert _mode(fresh) == 0o600  # this umask asks for it
