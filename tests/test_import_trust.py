"""Importers never store nonsense and one bad file never stops the others (issue 26, items 5, 6, 9, 10, 12,
13 and the COCO messages of 15)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

import samples
from cli_runner import run_cli
from engine.categories import add_category
from engine.coco.importer import import_coco
from engine.errors import CocoFormatError, MarginaliaError
from engine.ingest.scan_import import import_scans
from engine.layout.files import export_layouts, import_layout_files
from engine.project import Project
from engine.store.schema import Annotation, Category

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")


def _page_xml(path: Path, regions: list[str], size: tuple[int, int] = (300, 180), text: str = "") -> Path:
    body = "".join(f'<TextRegion id="r{n}"><Coords points="{points}"/>'
                   f'<TextLine id="r{n}l1"><Coords points="{points}"/>'
                   f'<TextEquiv><Unicode>{text}</Unicode></TextEquiv></TextLine></TextRegion>'
                   for n, points in enumerate(regions))
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="{PAGE_NS}"><Page imageFilename='
                    f'"{path.name.split(".")[0]}.png" imageWidth="{size[0]}" imageHeight="{size[1]}">{body}</Page>'
                    "</PcGts>", encoding="utf-8")
    return path


def _alto(path: Path, block: str, size: tuple[int, int] = (300, 180)) -> Path:
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">'
                    f'<Description><MeasurementUnit>pixel</MeasurementUnit></Description><Layout><Page ID="p" '
                    f'WIDTH="{size[0]}" HEIGHT="{size[1]}"><PrintSpace>{block}</PrintSpace></Page></Layout></alto>',
                    encoding="utf-8")
    return path


def _pages(project: Project, folder: Path, names: list[str], first: int = 0) -> None:
    """300×180 pages, each its own content (the same bytes twice would be one page)."""
    folder.mkdir(exist_ok=True)
    for number, name in enumerate(names, start=first):
        page = samples.gradient_rgb(300, 180)
        page.putpixel((number, 0), (255, 0, 255))
        page.save(folder / f"{name}.png")
    report = import_scans(project, [folder / f"{name}.png" for name in names])
    assert len(report.results) == len(names) and all(r.outcome.value == "imported" for r in report.results)


def _shapes(project: Project) -> list[Annotation]:
    with project.unit_of_work() as session:
        return list(session.scalars(select(Annotation)))


def test_layout_outlines_are_clipped_mended_or_refused_like_cocos(project: Project, tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["folio"])
    path = _page_xml(tmp_path / "folio.page.xml", [
        "10,10 100,10 100,50 10,50",           # as it is
        "250,100 400,100 400,150 250,150",     # reaches past the right edge: clipped
        "1000,1000 2000,1000 2000,2000",       # wholly outside
        "20,60 80,60",                         # two points
        "20,100 80,160 80,100 20,160",         # a bow-tie: mended into its two triangles
        "0,0 1e308,0 1e308,1e308 0,1e308",     # area 1e616: damage
    ])
    (result,) = import_layout_files(project, [path], "page").imported
    done, notes = result[1], result[2]
    assert (done.regions, done.lines) == (3, 3), notes
    joined = " | ".join(notes)
    assert "2 outline(s): it was clipped to the page" in joined
    assert "2 outline(s): its outline crossed itself and was mended" in joined
    assert "region 3 with its 1 line(s): it lies wholly outside the 300×180 page" in joined
    assert "region 4 with its 1 line(s): its outline has 2 distinct point(s)" in joined
    assert "region 6 with its 1 line(s): a coordinate (1e+308) lies far outside" in joined
    for shape in _shapes(project):
        assert 0 <= shape.bbox_x and shape.bbox_x + shape.bbox_w <= 300 and shape.bbox_y + shape.bbox_h <= 180
        assert 0 < shape.area <= 300 * 180 and math.isfinite(shape.area)
        assert shape.polygons, "stored as an outline, never as a box"
    bow_tie = [s for s in _shapes(project) if len(s.polygons or []) == 2]
    assert len(bow_tie) == 2 and all(abs(s.area - 1800) < 1 for s in bow_tie)  # two triangles of 900
    export = export_layouts(project, tmp_path / "out", "page")
    # The bow-tie's two triangles are a region each (PAGE gives a region one outline), and the export says so.
    assert export.regions == 4 and "Infinity" not in export.files[0].read_text()
    assert "1 shape(s) in several parts were written as a region per part" in export.summary()


def test_one_damaged_alto_file_never_stops_the_others(project: Project, tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["a", "b", "c", "d"])
    good = '<TextBlock ID="b1" HPOS="10" VPOS="10" WIDTH="100" HEIGHT="40"/>'
    files = [_alto(tmp_path / "a.alto.xml", '<TextBlock ID="b1" HPOS="NaN" VPOS="10" WIDTH="100" HEIGHT="40"/>'),
             _alto(tmp_path / "b.alto.xml", '<TextBlock ID="b1" HPOS="200" VPOS="10" WIDTH="-100" HEIGHT="40"/>'),
             _alto(tmp_path / "c.alto.xml", '<TextBlock ID="b1"><Shape><Polygon POINTS="10,10 NaN,20 30,40 50,60"/>'
                                            '</Shape></TextBlock>'),
             _alto(tmp_path / "d.alto.xml", good)]
    report = import_layout_files(project, files, "alto")
    imported = {path.name: (done, notes) for path, done, notes in report.imported}
    assert sorted(imported) == ["a.alto.xml", "d.alto.xml"] and imported["d.alto.xml"][0].regions == 1
    assert imported["a.alto.xml"][0].regions == 0  # its one block left out, and said
    assert imported["a.alto.xml"][1] == ["left out region 1: a coordinate is not a number (nan)"]
    reasons = {path.name: reason for path, reason in report.refused}
    assert sorted(reasons) == ["b.alto.xml", "c.alto.xml"]
    assert "negative WIDTH or HEIGHT" in reasons["b.alto.xml"]
    assert "are not pairs of numbers" in reasons["c.alto.xml"]


def test_a_transcription_beyond_any_page_is_refused(project: Project, tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["huge", "fine"])
    huge = _page_xml(tmp_path / "huge.page.xml", ["10,10 100,10 100,50 10,50"], text="x" * 150_000)
    fine = _page_xml(tmp_path / "fine.page.xml", ["10,10 100,10 100,50 10,50"], text="Vorrede")
    report = import_layout_files(project, [huge, fine], "page")
    assert [path.name for path, _, _ in report.imported] == ["fine.page.xml"]
    assert "transcription of 150,000 characters" in report.refused[0][1]
    assert max(len(shape.text or "") for shape in _shapes(project)) == len("Vorrede")


def test_category_names_with_control_characters_are_refused_and_exports_keep_working(project: Project,
                                                                                    tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["folio"])
    with pytest.raises(MarginaliaError, match="control character"):
        add_category(project, "Ini\x00tial")
    coco = tmp_path / "nul.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "folio.png", "width": 300, "height": 180}],
        "categories": [{"id": 1, "name": "Ini\u0000tial"}, {"id": 2, "name": "Plain"}],
        "annotations": [{"id": n, "image_id": 1, "category_id": 1 + n % 2, "bbox": [10 + n, 10, 20, 20]}
                        for n in range(4)]}))
    result = import_coco(project, coco)
    assert (result.annotations_added, result.annotations_skipped) == (2, 2)
    assert "control character" in result.problems[0] and "2 annotation(s) were skipped" in result.problems[0]
    with project.unit_of_work() as session:
        assert all("\x00" not in name for name in session.scalars(select(Category.name)))
    assert len(export_layouts(project, tmp_path / "page", "page").files) == 1
    assert len(export_layouts(project, tmp_path / "alto", "alto").files) == 1


def test_coco_ids_that_name_two_things_are_refused_with_their_counts(project: Project, tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["a", "b"])
    coco = tmp_path / "dup.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 300, "height": 180},
                   {"id": 1, "file_name": "b.png", "width": 300, "height": 180},
                   {"id": 2, "file_name": "b.png", "width": 300, "height": 180},
                   {"id": 2, "file_name": "b.png", "width": 300, "height": 180}],  # the same twice: harmless
        "categories": [{"id": 1, "name": "Initial"}, {"id": 1, "name": "Stamp"}, {"id": 2, "name": "Plain"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 1, 9, 9]},
                        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [2, 2, 9, 9]},
                        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [3, 3, 9, 9]},
                        {"id": 4, "image_id": 2, "category_id": 2, "bbox": [4, 4, 9, 9]}]}))
    result = import_coco(project, coco)
    assert (result.annotations_added, result.annotations_skipped) == (1, 3)
    problems = " | ".join(result.problems)
    assert "image id 1 is listed 2 times for different images ('a.png', 'b.png'); its 2 annotation(s)" in problems
    assert "category id 1 is listed 2 times for different categorys" in problems or \
        "category id 1 is listed 2 times" in problems
    assert "0 problem(s)" not in result.summary()


def test_coco_sizes_given_as_text_and_nesting_get_plain_messages(project: Project, tmp_path: Path) -> None:
    _pages(project, tmp_path / "scans", ["a"])
    coco = tmp_path / "text.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": "300", "height": "180"}],
                                "categories": [{"id": 1, "name": "Initial"}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}]}))
    result = import_coco(project, coco)
    assert "gives its width and height as '300' and '180', not as whole numbers" in result.problems[0]
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CocoFormatError, match="nests its lists and objects thousands deep"):
        import_coco(project, deep)


@posix_only
def test_pipes_and_devices_are_refused_at_once(project: Project, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    for args in (["import-coco", str(project.folder), str(pipe)],
                 ["import-page", str(project.folder), str(pipe)],
                 ["import-coco", str(project.folder), "/dev/zero"]):
        run = run_cli(*args)  # before: blocked for ever, or read until memory ran out
        assert run.returncode == 1 and ("is a pipe, not a file" in run.stdout + run.stderr
                                        or "is a device, not a file" in run.stdout + run.stderr), run


@posix_only
def test_messages_name_what_is_wrong_in_plain_words(project: Project, tmp_path: Path) -> None:
    """Pipes and link loops among scans, ambiguous pages with their folders, the exit status of an import
    that imported nothing."""
    odd = tmp_path / "odd"
    odd.mkdir()
    os.mkfifo(odd / "pipe.png")
    (odd / "loop.png").symlink_to(odd / "loop.png")
    run = run_cli("import", str(project.folder), str(odd / "pipe.png"), str(odd / "loop.png"))
    assert run.returncode == 1 and "nothing could be imported" in run.stderr
    assert "this is a pipe, not a file" in run.stdout and "a link that leads back to itself" in run.stdout
    assert "empty (0 bytes)" not in run.stdout and "broken link" not in run.stdout
    for number, book in enumerate(("book-a", "book-b")):  # the same name in two folders, different pages
        _pages(project, tmp_path / book, ["folio"], first=number)
    coco = tmp_path / "ambiguous.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "folio.png", "width": 300, "height": 180}],
                                "categories": [{"id": 1, "name": "Initial"}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}]}))
    said = run_cli("import-coco", str(project.folder), str(coco)).stdout
    assert "\\n" not in said and "candidate:" not in said
    assert str(tmp_path / "book-a" / "folio.png") in said and str(tmp_path / "book-b" / "folio.png") in said
    page = _page_xml(tmp_path / "folio.page.xml", ["10,10 100,10 100,50 10,50"])
    (_, reason), = import_layout_files(project, [page], "page").refused
    assert str(tmp_path / "book-a" / "folio.png") in reason and str(tmp_path / "book-b" / "folio.png") in reason
