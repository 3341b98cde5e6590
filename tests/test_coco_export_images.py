"""COCO export: names that resolve against the images root, and a self-contained folder with the images."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from pycocotools.coco import COCO
from sqlalchemy import select

import samples
from engine.annotations import Geometry, create_annotation
from engine.categories import get_or_create_category
from cli_runner import run_cli
from engine.coco.exporter import export_coco
from engine.imaging.orientation import INVERSE, apply_orientation
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Image


def _collection(root: Path) -> list[Path]:
    (root / "book-a").mkdir(parents=True)
    (root / "book-b").mkdir()
    first = samples.write_jpeg(root / "book-a" / "0001.jpg", (320, 200))
    second = root / "book-b" / "0001.jpg"
    samples.marked_rgb(300, 200).save(second, "JPEG", quality=95)  # the same bare name, other content
    turned = root / "book-b" / "turned.tif"
    apply_orientation(samples.marked_rgb(240, 160), INVERSE[6]).save(turned, "TIFF", tiffinfo={274: 6})
    volume = samples.write_multipage_tiff(root / "book-a" / "volume.tif", [(200, 100), (150, 120)])
    pdf = samples.write_scan_pdf(root / "book-b" / "letter.pdf", [samples.marked_rgb(260, 180)])
    return [first, second, turned, volume, pdf]


def _annotate_every_page(project: Project) -> None:
    with project.unit_of_work() as session:
        category, _ = get_or_create_category(session, "Initial")
        category_id = category.id
        images = [(image.id, image.width, image.height) for image in session.scalars(select(Image))]
    for image_id, width, height in images:
        create_annotation(project, image_id=image_id, category_id=category_id, creator="Test",
                          geometry=Geometry(bbox=(width / 3, height / 7, width / 3, height / 3)))


def _load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_exported_names_resolve_against_the_images_root(project: Project, tmp_path: Path) -> None:
    import_scans(project, _collection(tmp_path / "scans"))
    _annotate_every_page(project)
    out = tmp_path / "export" / "dataset.json"
    out.parent.mkdir()
    summary = export_coco(project, out)
    assert summary.images_root == tmp_path / "scans"
    data = json.loads(out.read_text())
    for entry in data["images"]:
        assert not entry["file_name"].startswith("/")
        assert (summary.images_root / entry["file_name"]).is_file(), entry["file_name"]
    for annotation in data["annotations"]:
        for value in annotation["bbox"] + [annotation["area"]]:
            assert round(value, 2) == value  # no float noise
    chosen = export_coco(project, out, image_root=tmp_path, overwrite=True)
    assert {entry["file_name"].split("/")[0] for entry in json.loads(out.read_text())["images"]} == {"scans"}
    assert chosen.images_root == tmp_path


def test_export_with_images_is_a_folder_any_tool_loads(project: Project, tmp_path: Path) -> None:
    import_scans(project, _collection(tmp_path / "scans"))
    _annotate_every_page(project)
    out = tmp_path / "export" / "dataset.json"
    out.parent.mkdir()
    export_coco(project, out, with_images=True)
    coco = _load(out)
    names = sorted(entry["file_name"] for entry in coco.dataset["images"])
    assert names == ["images/book-a/0001.jpg", "images/book-a/volume_p1.png", "images/book-a/volume_p2.png",
                     "images/book-b/0001.jpg", "images/book-b/letter.png", "images/book-b/turned.png"]
    for entry in coco.dataset["images"]:
        with PILImage.open(out.parent / entry["file_name"]) as picture:  # no orientation flag to apply
            assert picture.size == (entry["width"], entry["height"]), entry["file_name"]
            pixels = np.asarray(picture.convert("RGB"))
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[entry["id"]])):
            x, y, w, h = annotation["bbox"]
            assert 0 <= x and x + w <= entry["width"] and 0 <= y and y + h <= entry["height"]
        if entry["file_name"].endswith("turned.png"):
            assert tuple(pixels[10, 10]) == (255, 0, 0)  # upright: the red quarter top-left
    original = tmp_path / "scans" / "book-a" / "0001.jpg"
    assert (out.parent / "images" / "book-a" / "0001.jpg").read_bytes() == original.read_bytes()
    assert os.stat(out.parent / "images" / "book-a" / "0001.jpg").st_ino != os.stat(original).st_ino


def test_hard_links_on_request(project: Project, tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    page = samples.write_jpeg(tmp_path / "scans" / "page.jpg")
    import_scans(project, [page])
    out = tmp_path / "dataset.json"
    export_coco(project, out, with_images=True, link_images=True)
    assert os.stat(tmp_path / "images" / "page.jpg").st_ino == os.stat(page).st_ino
    export_coco(project, out, with_images=True, link_images=True, overwrite=True)  # again: nothing doubles
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["page.jpg"]


def test_the_cli_exports_with_images_and_names_the_root(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        import_scans(project, _collection(tmp_path / "scans"))
    out = tmp_path / "export" / "dataset.json"
    out.parent.mkdir()
    run = subprocess.run([sys.executable, str(repo / "main.py"), "export", str(folder), "--out", str(out),
                          "--with-images"], capture_output=True, text=True, cwd=repo, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"relative to {out.parent / 'images'}" in run.stdout
    assert all((out.parent / entry["file_name"]).is_file() for entry in _load(out).dataset["images"])
    with_images = out.read_bytes()
    refused = run_cli("export", str(folder), "--out", str(out), "--images-root", str(tmp_path))
    assert refused.returncode == 1 and "--overwrite" in refused.stderr and out.read_bytes() == with_images
    run = run_cli("export", str(folder), "--out", str(out), "--images-root", str(tmp_path), "--overwrite")
    assert run.returncode == 0, run.stderr
    assert all((tmp_path / entry["file_name"]).is_file() for entry in json.loads(out.read_text())["images"])
