"""PAGE XML and ALTO: the shared Kant ground truth in and out again, validated against the official schemas;
files that do not fit their page are refused; parent links survive deletion and undo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from lxml import etree
from sqlalchemy import select

from engine.annotations import delete_annotations, restore
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.layout.alto import read_alto, write_alto
from engine.layout.files import export_layouts, import_layout_files
from engine.layout.model import PageLayout, Points
from engine.layout.page_xml import read_page, write_page
from engine.layout.store import LayoutMismatchError, import_layout, layout_of
from engine.project import Project
from engine.store.schema import Annotation, Category

REPO = Path(__file__).resolve().parents[1]
KANT = "kant_aufklaerung_1784_0017"
XLINK = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/1999/xlink"
            attributeFormDefault="qualified">
  <xsd:attributeGroup name="simpleLink">
    <xsd:attribute name="type" type="xsd:string" fixed="simple"/>
    <xsd:attribute name="href" type="xsd:anyURI"/>
    <xsd:attribute name="role" type="xsd:string"/>
    <xsd:attribute name="arcrole" type="xsd:string"/>
    <xsd:attribute name="title" type="xsd:string"/>
    <xsd:attribute name="show" type="xsd:string"/>
    <xsd:attribute name="actuate" type="xsd:string"/>
  </xsd:attributeGroup>
</xsd:schema>
"""


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, etree.XMLSchema]:
    folder = Path(os.environ.get("MARGINALIA_SHARED_DATA", REPO.parent / "shared" / "data")).parent / "docs" / "schemas"
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the official schemas are missing at {folder}")
        pytest.skip(f"schemas not found at {folder}")
    # ALTO imports the XLink schema from loc.gov: offline, a local copy of the one group ALTO uses.
    local = tmp_path_factory.mktemp("schemas")
    (local / "xlink.xsd").write_text(XLINK, encoding="utf-8")
    alto = (folder / "alto-4-4.xsd").read_text(encoding="utf-8")
    (local / "alto.xsd").write_text(alto.replace("http://www.loc.gov/standards/xlink/xlink.xsd", "xlink.xsd"),
                                    encoding="utf-8")
    return {"page": etree.XMLSchema(etree.parse(str(folder / "pagecontent-2019-07-15.xsd"))),
            "alto": etree.XMLSchema(etree.parse(str(local / "alto.xsd")))}


@pytest.fixture
def project(any_project):
    """Store tests run on both databases: SQLite, then PostgreSQL (``tests/team_fixtures.py``)."""
    return any_project


def _valid(schema: etree.XMLSchema, path: Path) -> None:
    assert schema.validate(etree.parse(str(path))), f"{path.name}: {schema.error_log}"


@pytest.fixture
def kant(project: Project, shared_data: Path, tmp_path: Path) -> tuple[Project, int, Path]:
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(shared_data / "manuscripts" / f"{KANT}.tif", scans)
    import_scans(project, [scans])
    (row,) = list_images(project)
    return project, row.id, shared_data / "manuscripts"


def _rasterised_iou(first: Points, second: Points) -> float:
    both = np.array(first + second)
    x0, y0 = np.floor(both.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(both.max(axis=0)).astype(int) + 1
    masks = []
    for points in (first, second):
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, [np.round((np.array(points) - [x0, y0]) * 4).astype(np.int32)], 1, shift=2)
        masks.append(mask.astype(bool))
    union = (masks[0] | masks[1]).sum()
    return float((masks[0] & masks[1]).sum() / union) if union else 1.0


def _compare(ours: PageLayout, truth: PageLayout) -> None:
    assert ours.counts() == truth.counts()
    assert [r.kind for r in ours.regions] == [r.kind for r in truth.regions]
    for region, true_region in zip(ours.regions, truth.regions, strict=True):
        assert _rasterised_iou(region.points, true_region.points) >= 0.99
        assert region.text == true_region.text
        for line, true_line in zip(region.lines, true_region.lines, strict=True):
            assert _rasterised_iou(line.points, true_line.points) >= 0.99
            assert line.text == true_line.text
            assert (line.baseline is None) == (true_line.baseline is None)
            for word, true_word in zip(line.words, true_line.words, strict=True):
                assert _rasterised_iou(word.points, true_word.points) >= 0.99
                assert word.text == true_word.text


def test_kant_page_xml_ground_truth_round_trips(kant, tmp_path: Path, schemas) -> None:
    project, image_id, folder = kant
    truth = read_page(folder / f"{KANT}.page.xml")
    assert truth.counts() == (13, 24, 161)
    report = import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    assert not report.refused and report.imported[0][1].image_id == image_id  # placed by its name
    done = export_layouts(project, tmp_path / "out", "page")
    (written,) = done.files
    assert written.name == f"{KANT}.page.xml"
    _valid(schemas["page"], written)
    again = read_page(written)
    assert again.image_name == f"../scans/{KANT}.tif" and (again.width, again.height) == (1457, 2083)
    _compare(again, truth)
    assert again.regions[0].lines[0].words[0].text == "Berliniſche"  # long s kept as written


def test_kant_alto_ground_truth_round_trips_and_agrees_with_page(kant, tmp_path: Path, schemas) -> None:
    project, image_id, folder = kant
    truth = read_alto(folder / f"{KANT}.alto.xml")  # ALTO v2
    import_layout_files(project, [folder / f"{KANT}.alto.xml"], "alto")
    done = export_layouts(project, tmp_path / "out", "alto")
    _valid(schemas["alto"], done.files[0])
    again = read_alto(done.files[0])
    _compare(again, truth)
    # The PAGE file of the same page holds the same words at the same places.
    page = read_page(folder / f"{KANT}.page.xml")
    alto_words = [w for r in again.regions for line in r.lines for w in line.words]
    page_words = [w for r in page.regions for line in r.lines for w in line.words]
    assert [w.text for w in alto_words] == [w.text for w in page_words]


def test_page_and_alto_written_from_any_shapes_validate(kant, tmp_path: Path, schemas) -> None:
    """Shapes a curator or a model made (masks, boxes, a line without a paragraph, an ornament) are written
    as valid files too; a region type PAGE has no element for is a custom region and comes back as such."""
    from engine.annotations import Geometry, Provenance, create_annotations
    from engine.categories import add_category
    from engine.coco.geometry import rle_from_mask

    project, image_id, folder = kant
    import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    mask = np.zeros((2083, 1457), np.uint8)
    mask[100:180, 200:400] = 1
    mask[100:180, 450:500] = 1  # two pieces: a region each
    ornament = add_category(project, "Decorated initial").id
    create_annotations(project, image_id=image_id, category_id=ornament, creator="Ada",
                       geometries=[Geometry(rle=rle_from_mask(mask)), Geometry(bbox=(10.0, 10.0, 50.0, 40.0))],
                       provenances=[Provenance(), Provenance()])
    with project.unit_of_work() as session:
        line = session.scalars(select(Annotation).join(Category).where(Category.name == "Line")).first()
        line.parent_id = None  # a line whose paragraph is gone
    for fmt, schema in (("page", schemas["page"]), ("alto", schemas["alto"])):
        done = export_layouts(project, tmp_path / fmt, fmt)
        _valid(schema, done.files[0])
        read = (read_page if fmt == "page" else read_alto)(done.files[0])
        assert sum(r.kind == "Decorated initial" for r in read.regions) == 3
        assert read.counts()[1] == 24 and any("without a region" in note for note in done.notes)
        assert any("1 shape(s) in several parts were written as a region per part" in note for note in done.notes)


def test_files_that_do_not_fit_their_page_are_refused_and_the_others_imported(project: Project, shared_data: Path,
                                                                              tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in (f"{KANT}.tif", "kant_aufklaerung_1784_0020.tif", "kant_aufklaerung_1784_0020.jp2",
                 "bengel_abriss01_1751_0007.jpg"):
        shutil.copy(shared_data / "manuscripts" / name, scans)
    import_scans(project, [scans])
    rows = {Path(row.path).name: row.id for row in list_images(project)}
    broken = tmp_path / "broken.page.xml"
    broken.write_text("<PcGts><Page imageWidth='10'", encoding="utf-8")
    source = shared_data / "manuscripts"
    report = import_layout_files(project, [source / "kant_aufklaerung_1784_0020.page.xml", broken,
                                           source / f"{KANT}.page.xml"], "page")
    refused = dict(report.refused)
    assert "could belong to 2 pages" in refused[source / "kant_aufklaerung_1784_0020.page.xml"]  # .tif and .jp2
    assert "not well-formed" in refused[broken]
    assert [done.image_id for _, done, _ in report.imported] == [rows[f"{KANT}.tif"]]
    # Named by the curator: the JPEG 2000. On the wrong scan (another size): refused, nothing added.
    chosen = import_layout_files(project, [source / "kant_aufklaerung_1784_0020.page.xml"], "page",
                                 image_id=rows["kant_aufklaerung_1784_0020.jp2"])
    assert chosen.imported and not chosen.refused
    wrong = import_layout_files(project, [source / f"{KANT}.page.xml"], "page",
                                image_id=rows["bengel_abriss01_1751_0007.jpg"])
    assert "1457×2083" in wrong.refused[0][1] and "1600×2867" in wrong.refused[0][1]
    with project.unit_of_work() as session:
        assert not session.scalars(select(Annotation).where(
            Annotation.image_id == rows["bengel_abriss01_1751_0007.jpg"])).all()
    turned = PageLayout(2083, 1457)
    with pytest.raises(LayoutMismatchError, match="turned by a quarter"):
        import_layout(project, rows[f"{KANT}.tif"], turned, source="PAGE XML", replace=True)


def test_a_second_import_is_refused_unless_it_replaces_the_first(kant) -> None:
    project, image_id, folder = kant
    import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    again = import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    assert "already holds an import from PAGE XML (198 shapes)" in again.refused[0][1]
    replaced = import_layout_files(project, [folder / f"{KANT}.page.xml"], "page", replace=True)
    assert replaced.imported[0][1].replaced == 198
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Annotation)).all()) == 198


def test_alto_in_millimetres_and_entities_are_refused_or_left_unexpanded(kant, tmp_path: Path) -> None:
    project, _image_id, folder = kant
    alto = (folder / f"{KANT}.alto.xml").read_text(encoding="utf-8")
    millimetres = tmp_path / f"{KANT}.alto.xml"
    millimetres.write_text(alto.replace("<MeasurementUnit>pixel", "<MeasurementUnit>mm10"), encoding="utf-8")
    report = import_layout_files(project, [millimetres], "alto")
    assert "mm10" in report.refused[0][1]
    secret = tmp_path / "secret.txt"
    secret.write_text("private", encoding="utf-8")
    hostile = tmp_path / "hostile.page.xml"
    hostile.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE PcGts [<!ENTITY leak SYSTEM "file://{secret}">]>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"><Metadata/>
<Page imageFilename="x.tif" imageWidth="1457" imageHeight="2083">
<TextRegion id="r"><Coords points="1,1 100,1 100,100 1,100"/><TextLine id="l"><Coords points="1,1 100,1 100,50 1,50"/>
<TextEquiv><Unicode>&leak;</Unicode></TextEquiv></TextLine></TextRegion></Page></PcGts>""", encoding="utf-8")
    layout = read_page(hostile)
    assert "private" not in (layout.regions[0].lines[0].text or "")


def test_parent_links_survive_deleting_a_line_and_undoing_it_and_ids_are_never_reused(kant) -> None:
    project, image_id, folder = kant
    import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    with project.unit_of_work() as session:
        rows = {row.id: row for row in session.scalars(select(Annotation))}
        names = {c.id: c.name for c in session.scalars(select(Category))}
        parents = {c.name: (c.parent.name if c.parent else None) for c in session.scalars(select(Category))}
    assert parents["Line"] == parents["Word"] == parents["Heading"] == "Text" and parents["Separator"] is None
    words = [r for r in rows.values() if names[r.category_id] == "Word"]
    lines = [r for r in rows.values() if names[r.category_id] == "Line"]
    assert all(names[rows[w.parent_id].category_id] == "Line" for w in words)
    assert all(rows[line.parent_id].parent_id is None for line in lines)
    for siblings in ([w for w in words if w.parent_id == lines[0].id], lines):  # reading order is total
        orders = sorted(r.reading_order for r in siblings if r.parent_id == siblings[0].parent_id)
        assert orders == list(range(len(orders)))
    for word in words:  # every word inside its line's box (a pixel of slack)
        line = rows[word.parent_id]
        assert line.bbox_x - 1 <= word.bbox_x and word.bbox_x + word.bbox_w <= line.bbox_x + line.bbox_w + 1
    line = lines[3]
    children = sorted(w.id for w in words if w.parent_id == line.id)
    deleted = delete_annotations(project, [line.id])
    newest = max(rows)
    delete_annotations(project, [newest])
    from engine.annotations import Geometry, create_annotation

    fresh = create_annotation(project, image_id=image_id, category_id=line.category_id, creator="Ada",
                              geometry=Geometry(bbox=(1.0, 1.0, 5.0, 5.0)))
    assert fresh.id > newest  # a deleted parent's id is never given to a newcomer
    restore(project, deleted)
    assert sorted(w.id for w in layout_children(project, line.id)) == children
    # The newest shape (the last separator) is gone; the new line stands alone in a region; all words are back.
    assert layout_of(project, image_id).counts() == (13, 25, 161)


def test_reshaping_a_word_keeps_it_in_its_line_and_strokes_stay_out_of_layout_files(kant, tmp_path: Path) -> None:
    from engine.annotations import Geometry, create_annotation, update_geometry
    from engine.categories import add_category
    from engine.coco.geometry import rle_from_mask

    project, image_id, folder = kant
    import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    with project.unit_of_work() as session:
        word = session.scalars(select(Annotation).join(Category).where(Category.name == "Word")).first()
        word_id, line_id = word.id, word.parent_id
    update_geometry(project, word_id, Geometry(bbox=(120.0, 370.0, 300.0, 60.0)))
    with project.unit_of_work() as session:
        assert session.get(Annotation, word_id).parent_id == line_id and session.get(Annotation, word_id).text
    ink = np.zeros((2083, 1457), np.uint8)
    ink[400:420, 100:900] = 1
    strokes = add_category(project, "Text strokes").id
    create_annotation(project, image_id=image_id, category_id=strokes, creator="hi-sam",
                      geometry=Geometry(rle=rle_from_mask(ink)))
    done = export_layouts(project, tmp_path / "out", "page")
    assert read_page(done.files[0]).counts() == (13, 24, 161)  # the strokes mask is no region
    assert any("stroke masks are not written" in note for note in done.notes)


def layout_children(project: Project, parent_id: int) -> list[Annotation]:
    with project.unit_of_work() as session:
        return list(session.scalars(select(Annotation).where(Annotation.parent_id == parent_id)))


def test_the_command_line_imports_and_exports_page_and_alto(kant, tmp_path: Path, schemas) -> None:
    from tests.cli_runner import run_cli

    project, image_id, folder = kant
    project.close()
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args)

    imported = run("import-alto", str(project.folder), str(folder / f"{KANT}.alto.xml"), "--json")
    assert imported.returncode == 0, imported.stderr
    (entry,) = json.loads(imported.stdout)["imported"]
    assert (entry["image_id"], entry["lines"], entry["words"]) == (image_id, 24, 161)
    refused = run("import-alto", str(project.folder), str(folder / f"{KANT}.alto.xml"))
    assert refused.returncode == 1 and "already holds an import from ALTO (198 shapes)" in refused.stdout
    out = tmp_path / "page-out"
    exported = run("export", str(project.folder), "--format", "page", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "24 line(s), 161 word(s)" in exported.stdout
    _valid(schemas["page"], out / f"{KANT}.page.xml")
    coco_only = run("export", str(project.folder), "--format", "alto", "--out", str(out), "--with-images")
    assert coco_only.returncode == 1 and "are for COCO" in coco_only.stderr


def test_writers_round_trip_a_layout_in_memory(schemas, tmp_path: Path) -> None:
    from engine.layout.model import Line, Region, Word

    layout = PageLayout(800, 600, [
        Region("heading", [(10, 10), (300, 10), (300, 60), (10, 60)], [
            Line([(12, 12), (298, 12), (298, 58), (12, 58)], [Word([(12, 12), (100, 12), (100, 58), (12, 58)], "Über"),
                                                             Word([(110, 12), (298, 12), (298, 58), (110, 58)], "&<>")],
                 text="Über &<>", baseline=[(12, 50), (298, 50)])]),
        Region("marginalia", [(600, 100), (780, 100), (780, 400), (600, 400)], [
            Line([(600, 100), (780, 100), (780, 130), (600, 130)], text="no words")]),
        Region("SeparatorRegion", [(10, 70), (790, 70), (790, 72), (10, 72)])])
    for write, read, schema in ((write_page, read_page, schemas["page"]), (write_alto, read_alto, schemas["alto"])):
        path = tmp_path / "layout.xml"
        path.write_bytes(write(layout, "scan.tif"))
        _valid(schema, path)
        back = read(path)
        assert [r.kind for r in back.regions] == ["heading", "marginalia", "SeparatorRegion"]
        assert back.regions[0].lines[0].words[1].text == "&<>" and back.image_name == "scan.tif"


def test_proposals_are_written_only_when_asked_and_the_export_says_how_many_were_left_out(kant, tmp_path: Path) -> None:
    from engine.store.types import AnnotationStatus

    project, _image_id, folder = kant
    import_layout_files(project, [folder / f"{KANT}.page.xml"], "page")
    with project.unit_of_work() as session:  # as a model would leave them: not yet reviewed
        for annotation in session.scalars(select(Annotation)):
            annotation.status = AnnotationStatus.PROPOSED
    accepted_only = export_layouts(project, tmp_path / "a", "alto")
    assert accepted_only.regions == 0 and accepted_only.proposals_left_out == 198
    assert "198 proposal(s) not yet reviewed were left out" in accepted_only.summary()
    with_proposals = export_layouts(project, tmp_path / "b", "alto", include_proposals=True)
    assert (with_proposals.regions, with_proposals.words, with_proposals.proposals_left_out) == (13, 161, 0)
