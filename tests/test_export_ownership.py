"""An export writes only what is its own: never a scan, the project, a ground-truth file or another tool's
file; image names unique per page and always naming a file that exists (issue 26, items 1–4, 7, 8)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

import samples
from cli_runner import run_cli
from curators_folder import GROUND_TRUTH, changed_or_gone, fingerprint, make_curators_folder
from engine.coco.exporter import export_coco
from engine.export_files import MANIFEST_NAME, ExportConflictError
from engine.ingest.scan_import import import_scans
from engine.layout.files import export_layouts
from engine.project import Project

posix_names = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")


def test_images_exported_beside_the_collection_never_replace_its_scans(tmp_path: Path) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    before = fingerprint(collection)
    with Project.open(project_folder) as project:
        for overwrite in (False, True):  # overwriting means only what an export wrote
            with pytest.raises(ExportConflictError, match="images/scan.jpg is one of the project.s own files"):
                export_coco(project, collection / "fresh.json", with_images=True, overwrite=overwrite)
    assert changed_or_gone(before, fingerprint(collection)) == []
    assert not (collection / "fresh.json").exists()  # refused before anything was written


def test_the_project_database_and_the_scans_are_never_an_exports_target(tmp_path: Path) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    scan = collection / "images" / "scan.png"
    scan_bytes = scan.read_bytes()
    for out in (project_folder / "project.sqlite", scan, project_folder / "project.sqlite-wal",
                project_folder / "cache" / "export.json"):
        run = run_cli("export", str(project_folder), "--out", str(out), "--overwrite")
        assert run.returncode == 1, (out, run.stdout)
        assert "one of the project's own files" in run.stderr or "not written by a Marginalia export" in run.stderr
    assert scan.read_bytes() == scan_bytes
    listed = run_cli("list", str(project_folder))
    assert listed.returncode == 0 and "4 image(s)" in listed.stdout  # the project is whole


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_a_layout_export_never_replaces_a_file_it_did_not_write(tmp_path: Path, fmt: str) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    if fmt == "alto":
        (collection / "letter.alto.xml").write_bytes(GROUND_TRUTH)
    before = fingerprint(collection)
    with Project.open(project_folder) as project:
        for overwrite in (False, True):
            with pytest.raises(ExportConflictError, match=f"letter.{fmt}.xml already exists"):
                export_layouts(project, collection, fmt, overwrite=overwrite)
        assert changed_or_gone(before, fingerprint(collection)) == []
        out = tmp_path / "exported"
        first = export_layouts(project, out, fmt)
        with pytest.raises(ExportConflictError, match="from an earlier export.*--overwrite"):
            export_layouts(project, out, fmt)
        again = export_layouts(project, out, fmt, overwrite=True)  # its own files, unchanged since: replaced
        assert again.files == first.files and (out / MANIFEST_NAME).is_file()
        edited = first.files[0]
        edited.write_bytes(edited.read_bytes().replace(b"</", b"<!-- checked by hand -->\n</", 1))
        with pytest.raises(ExportConflictError, match="or was changed since"):
            export_layouts(project, out, fmt, overwrite=True)  # the curator's edit is theirs now
        assert b"checked by hand" in edited.read_bytes()


def test_pages_sharing_a_stem_export_to_distinct_images_that_exist(tmp_path: Path) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    samples.marked_rgb(220, 140).save(collection / "images" / "scan.avif")
    out = tmp_path / "dataset" / "coco.json"
    with Project.open(project_folder) as project:
        import_scans(project, [collection / "images" / "scan.avif"])
        export_coco(project, out, with_images=True)
    images = json.loads(out.read_text())["images"]
    names = [entry["file_name"] for entry in images]
    assert len(names) == 5 and len({name.casefold() for name in names}) == 5, names
    for entry in images:  # each name is a file holding that page's pixels
        with PILImage.open(out.parent / entry["file_name"]) as written:
            assert written.size == (entry["width"], entry["height"]), entry["file_name"]
    assert "images/letter.png" in names  # names no other page shares stay as they are


@posix_names
def test_names_that_are_not_utf8_never_become_a_name_that_does_not_exist(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    odd = samples.write_png(scans / os.fsdecode(b"scan_\xff.png"), (300, 180))
    samples.write_png(scans / "scan_%FF.png", (200, 100))  # spelt like the odd name's escape
    samples.write_png(scans / "plain.png", (210, 110))
    with Project.create(tmp_path / "project") as project:
        import_scans(project, [scans])
        with pytest.raises(Exception, match=r"not UTF-8 \(for example scan_\\xff.png\).*Export with the images"):
            export_coco(project, tmp_path / "plain.json")
        out = tmp_path / "with-images" / "coco.json"
        export_coco(project, out, with_images=True)
        images = json.loads(out.read_text())["images"]
        names = [entry["file_name"] for entry in images]
        assert len(set(names)) == 3 and all((out.parent / name).is_file() for name in names), names
        for entry in images:
            with PILImage.open(out.parent / entry["file_name"]) as written:
                assert written.size == (entry["width"], entry["height"])
        layouts = export_layouts(project, tmp_path / "page", "page")
    assert len(layouts.files) == 2 and len(layouts.left_out) == 1 and "not UTF-8" in layouts.left_out[0]
    run = run_cli("export", str(tmp_path / "project"), "--format", "alto", "--out", str(tmp_path / "alto"))
    assert run.returncode == 1 and "not written: " in run.stdout and "Traceback" not in run.stderr
    assert len(list((tmp_path / "alto").glob("*.alto.xml"))) == 2
    assert odd.is_file()


def test_every_export_option_of_the_command_line_leaves_the_curators_files_as_they_were(tmp_path: Path) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    before = fingerprint(collection)
    project, c = str(project_folder), collection
    attempts = [
        ["--out", c / "dataset.json"], ["--out", c / "dataset.json", "--overwrite"],
        ["--out", c / "new.json", "--with-images"], ["--out", c / "new.json", "--with-images", "--overwrite"],
        ["--out", c / "new.json", "--with-images", "--link-images", "--overwrite"],
        ["--out", c / "images" / "scan.jpg", "--include-proposals"],
        ["--out", c / "listed.json", "--images-root", c, "--include-proposals"],
        ["--format", "page", "--out", c], ["--format", "page", "--out", c / "images", "--overwrite"],
        ["--format", "alto", "--out", c / "images"], ["--format", "alto", "--out", c, "--include-proposals"],
    ]
    outcomes = [run_cli("export", project, *map(str, options)).returncode for options in attempts]
    assert changed_or_gone(before, fingerprint(collection)) == []
    assert outcomes == [1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]  # the refusals, and new files written beside
    assert json.loads((c / "listed.json").read_text())["images"]
