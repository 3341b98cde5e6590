"""A scan replaced in place is noticed; one merely touched is not; relink refuses folders that do not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from engine.errors import MarginaliaError
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images, summarise
from engine.project import Project
from engine.relink import relink

REPO = Path(__file__).resolve().parent.parent


def test_a_replaced_file_is_reported_changed_and_a_touched_one_is_not(project: Project, tmp_path: Path) -> None:
    replaced = samples.write_png(tmp_path / "replaced.png", (300, 180))
    same_size = samples.write_png(tmp_path / "same-size.png", (320, 180))
    touched = samples.write_png(tmp_path / "touched.png", (340, 180))
    import_scans(project, [replaced, same_size, touched])
    samples.write_jpeg(replaced, (300, 180))  # another file under the old name
    samples.marked_rgb(320, 180).save(same_size)  # other pixels, maybe the same byte count
    os.utime(same_size, (1, 1))
    later = touched.stat().st_mtime + 100
    os.utime(touched, (later, later))  # copied with a new time, same content
    rows = {Path(row.path).name: row for row in list_images(project)}
    assert rows["replaced.png"].changed and not rows["replaced.png"].missing
    assert rows["same-size.png"].changed
    assert not rows["touched.png"].changed
    assert summarise(project).changed_images == 2
    # The touched file's new time was remembered: it is not hashed again.
    assert not {Path(row.path).name: row for row in list_images(project)}["touched.png"].changed


def test_the_cli_list_marks_changed_files(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    page = samples.write_png(tmp_path / "folio.png")
    with Project.create(folder) as project:
        import_scans(project, [page])
    samples.write_jpeg(page)
    listed = subprocess.run([sys.executable, str(REPO / "main.py"), "list", str(folder)], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert listed.returncode == 0
    assert "[file changed since import]" in listed.stdout
    assert "1 with files changed since import" in listed.stdout


def test_relink_to_a_folder_that_does_not_exist_is_an_error(project: Project, tmp_path: Path) -> None:
    with pytest.raises(MarginaliaError, match="not a folder that exists"):
        relink(project, [tmp_path / "nowhere"])
    run = subprocess.run([sys.executable, str(REPO / "main.py"), "relink", str(project.folder),
                          str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 1 and "not a folder that exists" in run.stderr
