"""COCO import never attaches an annotation to the wrong page, and never drops one without saying so."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import select

import samples
from engine.coco.importer import import_coco
from engine.errors import ProjectBusyError
from engine.fileio import sha256_file
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Annotation, Image

REPO = Path(__file__).resolve().parent.parent


def _png(path: Path, size: tuple[int, int] = (300, 180), *, marked: bool = False) -> Path:
    """A page; ``marked`` gives other content of the same size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (samples.marked_rgb(*size) if marked else samples.gradient_rgb(*size)).save(path, "PNG")
    return path


def _coco(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "Initial"}],
                                "annotations": annotations}), encoding="utf-8")
    return path


def _box(annotation_id: int, image_id: int = 1, box: tuple = (10, 10, 20, 20)) -> dict:
    return {"id": annotation_id, "image_id": image_id, "category_id": 1, "bbox": list(box)}


def _annotated_paths(project: Project) -> dict[str, int]:
    with project.unit_of_work() as session:
        rows = session.execute(select(Image.path, Annotation.id).join(Annotation)).all()
    counts: dict[str, int] = {}
    for path, _ in rows:
        counts[path] = counts.get(path, 0) + 1
    return counts


def test_a_content_hash_from_another_book_attaches_nothing(project: Project, tmp_path: Path) -> None:
    book_a = _png(tmp_path / "book-a" / "page_001.png")
    book_b = _png(tmp_path / "book-b" / "page_001.png", marked=True)  # same name, same size, other content
    import_scans(project, [book_b])
    coco = _coco(tmp_path / "book-a.json",
                 [{"id": 1, "file_name": "page_001.png", "width": 300, "height": 180,
                   "attributes": {"sha256": sha256_file(book_a)}}],
                 [_box(1), _box(2, box=(50, 50, 10, 10))])
    report = import_coco(project, coco)
    assert report.annotations_added == 0
    assert report.annotations_skipped == 2
    assert _annotated_paths(project) == {}
    assert "different content" in report.problems[0] and str(book_b) in report.problems[0]


def test_the_same_hash_matches_whatever_the_name(project: Project, tmp_path: Path) -> None:
    page = _png(tmp_path / "renamed.png")
    import_scans(project, [page])
    coco = _coco(tmp_path / "a.json", [{"id": 7, "file_name": "original-name.png", "width": 300, "height": 180,
                                        "attributes": {"sha256": sha256_file(page)}}], [_box(1, 7)])
    assert import_coco(project, coco).annotations_added == 1
    assert _annotated_paths(project) == {str(page): 1}


def test_same_bare_name_in_two_books_is_ambiguous_unless_a_folder_decides(project: Project, tmp_path: Path) -> None:
    first = _png(tmp_path / "scans" / "book-a" / "00000001.png")
    second = _png(tmp_path / "scans" / "book-b" / "00000001.png", marked=True)
    import_scans(project, [tmp_path / "scans"])
    bare = _coco(tmp_path / "bare.json", [{"id": 1, "file_name": "00000001.png", "width": 300, "height": 180}],
                 [_box(1), _box(2, box=(1, 1, 5, 5)), _box(3, box=(2, 2, 5, 5))])
    report = import_coco(project, bare)
    assert (report.annotations_added, report.annotations_skipped) == (0, 3)
    assert "ambiguous" in report.problems[0]
    assert str(first) in report.problems[0] and str(second) in report.problems[0]
    assert _annotated_paths(project) == {}

    with_folder = _coco(tmp_path / "folder.json",
                        [{"id": 1, "file_name": "book-b\\00000001.png", "width": 300, "height": 180}], [_box(1)])
    assert import_coco(project, with_folder).annotations_added == 1
    assert _annotated_paths(project) == {str(second): 1}


def test_relative_and_absolute_paths_name_the_file_exactly(project: Project, tmp_path: Path) -> None:
    here = _png(tmp_path / "work" / "scans" / "folio.png")
    elsewhere = _png(tmp_path / "backup" / "scans" / "folio.png", marked=True)
    import_scans(project, [here, elsewhere])
    relative = _coco(tmp_path / "work" / "coco" / "rel.json",
                     [{"id": 1, "file_name": "../scans/folio.png", "width": 300, "height": 180}], [_box(1)])
    assert import_coco(project, relative).annotations_added == 1
    absolute = _coco(tmp_path / "abs.json",
                     [{"id": 1, "file_name": str(elsewhere), "width": 300, "height": 180}], [_box(2, box=(3, 3, 9, 9))])
    assert import_coco(project, absolute).annotations_added == 1
    assert _annotated_paths(project) == {str(here): 1, str(elsewhere): 1}


def test_nfc_and_nfd_spellings_of_a_name_match(project: Project, tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Blatt_für_Kühn.png")
    page = _png(tmp_path / decomposed)
    import_scans(project, [page])
    coco = _coco(tmp_path / "a.json", [{"id": 1, "file_name": unicodedata.normalize("NFC", "Blatt_für_Kühn.png"),
                                        "width": 300, "height": 180}], [_box(1)])
    assert import_coco(project, coco).annotations_added == 1


def test_geometry_is_clipped_checked_and_every_dropped_annotation_counted(project: Project, tmp_path: Path) -> None:
    page = _png(tmp_path / "folio.png")
    import_scans(project, [page])
    square = [[10, 10, 60, 10, 60, 60, 10, 60]]
    coco = _coco(tmp_path / "a.json", [{"id": 1, "file_name": "folio.png", "width": 300, "height": 180}], [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[5000, 5000, 5100, 5000, 5100, 5100]],
         "bbox": [5000, 5000, 100, 100], "area": 5000},
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[250, 100, 400, 100, 400, 150, 250, 150]]},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": square, "bbox": [0, 0, 200, 200], "area": 9},
        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[100, 10, 150, 10, 150, 60, 100, 60]],
         "bbox": [100, 10, 50, 50], "area": 2510.0},
        {"id": 5, "image_id": 42, "category_id": 1, "bbox": [1, 1, 2, 2]},
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": [290, 170, 50, 50]},
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [400, 10, 10, 10]},
        {"id": 8, "image_id": 1, "category_id": 1, "segmentation": {"size": [180, 300], "counts": [54000]}},
    ])
    report = import_coco(project, coco)
    text = "\n".join(report.problems + report.corrections)
    assert report.annotations_added == 4  # 2 (clipped), 3 (corrected), 4 (as written), 6 (clipped box)
    assert report.annotations_skipped == 4  # 1 and 7 outside, 5 without an image, 8 an empty mask
    assert "annotation 1" in text and "wholly outside the page" in text
    assert "annotation 7" in text
    assert "image_id 42" in text
    assert "annotation 8" in text and "empty" in text
    assert "annotation 2 on 'folio.png': its polygon was clipped to the page" in text
    assert "annotation 3" in text and "bbox [0.0, 0.0, 200.0, 200.0] disagrees" in text and "area 9" in text
    assert "annotation 4" not in text
    with project.unit_of_work() as session:
        rows = list(session.scalars(select(Annotation)))
        boxes = sorted((row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h) for row in rows)
        areas = [row.area for row in rows]
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= 300 and y + h <= 180, (x, y, w, h)
    assert (250.0, 100.0, 50.0, 50.0) in boxes  # the polygon's part inside the page
    assert (290.0, 170.0, 10.0, 10.0) in boxes  # the box's part inside the page
    assert 2510.0 in areas  # annotation 4's area agrees within 1 %: kept as written
    assert 9 not in areas  # annotation 3's wrong area is not


def test_annotations_are_written_in_batches_that_other_writers_can_interleave(project: Project,
                                                                             tmp_path: Path) -> None:
    page = _png(tmp_path / "folio.png")
    import_scans(project, [page])
    coco = _coco(tmp_path / "a.json", [{"id": 1, "file_name": "folio.png", "width": 300, "height": 180}],
                 [_box(index, box=(index % 200, 5, 10, 10 + index // 200)) for index in range(1, 1001)])
    commits: list[int] = []
    original = Project.writing

    def counting(self, cancel=None):
        commits.append(1)
        return original(self, cancel)

    Project.writing = counting  # type: ignore[method-assign]
    try:
        report = import_coco(project, coco, batch_size=300)
    finally:
        Project.writing = original  # type: ignore[method-assign]
    assert report.annotations_added == 1000
    assert len(commits) == 1 + 4  # the categories, then 300 + 300 + 300 + 100 annotations
    assert import_coco(project, coco).already_present == 1000  # again: nothing twice


def test_a_writer_waits_for_another_process_and_says_so(project: Project, monkeypatch) -> None:
    import engine.store.sqlite_store as project_module

    holder = sqlite3.connect(project.db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    heard: list[str] = []
    project.on_waiting = heard.append
    threading.Timer(1.5, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    with project.writing() as session:
        session.add(Image(path="/x.png", sha256="0" * 64, width=1, height=1, format="PNG", mode="RGB",
                          file_size=1, file_mtime=0.0))
    assert time.monotonic() - started >= 1.0
    assert heard and "another Marginalia process" in heard[0]

    monkeypatch.setattr(project_module, "WRITE_WAIT_S", 1.0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ProjectBusyError, match="Try again"), project.writing():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_cli_waits_for_a_busy_project_instead_of_failing(project: Project, tmp_path: Path) -> None:
    """The lock is held past SQLite's own wait (shortened to 1 s here; 10 s in the app), and is released only
    once the CLI has said that it waits, so no statement may bypass the waiting writer."""
    page = _png(tmp_path / "folio.png")
    holder = sqlite3.connect(project.db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    env = {**os.environ, "MARGINALIA_SQLITE_BUSY_TIMEOUT_MS": "1000"}
    cli = subprocess.Popen([sys.executable, str(REPO / "main.py"), "import", str(project.folder), str(page)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    said_it_waits = threading.Event()
    errors: list[str] = []

    def read_errors() -> None:
        for line in iter(cli.stderr.readline, ""):
            errors.append(line)
            if "Waiting for another Marginalia process" in line:
                said_it_waits.set()

    reader = threading.Thread(target=read_errors, daemon=True)
    reader.start()
    assert said_it_waits.wait(timeout=120), "".join(errors)
    time.sleep(2.5)  # well past the 1-s busy timeout: a statement outside the waiting writer would fail now
    holder.execute("COMMIT")
    output = cli.stdout.read()  # standard error is the reader's alone
    cli.wait(timeout=120)
    reader.join(timeout=10)
    holder.close()
    stderr = "".join(errors)
    assert cli.returncode == 0, stderr
    assert "OperationalError" not in stderr + output
    assert "1 file(s) imported" in output
