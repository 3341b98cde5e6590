"""File names as the operating system gives them: not UTF-8, with newlines, in other normal forms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

import samples
from engine.imaging.decode import load_page
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.store.schema import Image

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")


def _folder_with_odd_names(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    names = {"latin-1": os.fsdecode(b"Seite_f\xfcr_K\xfchn.png"),  # ISO 8859-1 bytes, not UTF-8
             "newline": "two\nlines.png", "plain": "plain.png"}
    paths = {}
    for index, (what, name) in enumerate(names.items()):
        paths[what] = folder / name
        samples.gradient_rgb(200 + 10 * index, 120).save(paths[what], "PNG")  # distinct contents
    return paths


def test_names_that_are_not_utf8_import_and_open(any_project: Project, tmp_path: Path) -> None:
    project = any_project
    paths = _folder_with_odd_names(tmp_path / "scans")
    report = import_scans(project, [tmp_path / "scans"])
    assert sorted(result.outcome for result in report.results) == [Outcome.IMPORTED] * 3
    with project.unit_of_work() as session:
        stored = {image.path: image for image in session.scalars(select(Image))}
    assert set(stored) == {str(path) for path in paths.values()}  # the exact names, bytes and all
    latin = stored[str(paths["latin-1"])]
    assert load_page(Path(latin.path), 0).size == (200, 120)  # the stored path still opens the file
    rows = {row.path: row for row in list_images(project)}
    assert not rows[str(paths["latin-1"])].missing
    assert rows[str(paths["latin-1"])].display_name == "Seite_f\\xfcr_K\\xfchn.png"
    assert rows[str(paths["newline"])].display_name == "two\\nlines.png"


def test_the_cli_report_keeps_one_line_per_file(tmp_path: Path) -> None:
    _folder_with_odd_names(tmp_path / "scans")
    project = tmp_path / "project"
    with Project.create(project):
        pass
    run = subprocess.run([sys.executable, str(REPO / "main.py"), "import", str(project), str(tmp_path / "scans")],
                         capture_output=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.decode("utf-8").splitlines()
    assert len(lines) == 4, lines  # three files and the summary
    assert any(line.startswith("imported") and "Seite_f\\xfcr_K\\xfchn.png" in line for line in lines)
    assert any(line.startswith("imported") and "two\\nlines.png" in line for line in lines)
    listed = subprocess.run([sys.executable, str(REPO / "main.py"), "list", str(project)],
                            capture_output=True, cwd=REPO, timeout=60)
    assert listed.returncode == 0 and b"Seite_f\\xfcr_K\\xfchn.png" in listed.stdout
