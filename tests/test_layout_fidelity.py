"""PAGE XML and ALTO read by the field's own readers exactly as the curator saw them, and their files read as
they wrote them: OCR-D's PAGE parser and validator, ALTO line texts rebuilt from String/SP/HYP as ALTO readers
build them; shapes of every kind, writing directions, region types of other tools, proposals with scores, and
files written the way kraken, Transkribus and Tesseract write them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image
from pycocotools import mask as mask_utils
from sqlalchemy import select

from engine.annotations import Geometry, Provenance, create_annotations
from engine.categories import add_category
from engine.coco.geometry import rasterise, rle_from_mask
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.layout.files import export_layouts, import_layout_files
from engine.layout.page_xml import read_page
from engine.project import Project
from engine.store.schema import Annotation, Category
from engine.store.types import AnnotationStatus
from tests import test_layout_formats

KANT = "kant_aufklaerung_1784_0017"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
WIDTH, HEIGHT = 600, 800


def alto_line_texts(path: Path) -> list[str]:
    """Each line's text as ALTO readers (kraken, Tesseract's tools, eScriptorium) build it: the strings'
    contents, a space for each ``SP``, the ``HYP``'s content — nothing else."""
    texts = []
    for line in etree.parse(str(path)).iter(f"{{{ALTO_NS}}}TextLine"):
        pieces = []
        for item in line:
            name = etree.QName(item).localname
            pieces.append(item.get("CONTENT", "") if name in ("String", "HYP") else " " if name == "SP" else "")
        texts.append("".join(pieces))
    return texts


def ocrd_reads(path: Path, consistency: str = "strict", baselines: bool = True):  # noqa: ANN201 - OCR-D's model
    """OCR-D's own parser and validator (outlines valid, text consistent between words and lines, baselines
    inside their lines): what a workflow that takes our file gets."""
    from ocrd_models.ocrd_page import parse
    from ocrd_validators import PageValidator

    report = PageValidator.validate(filename=str(path), page_textequiv_consistency=consistency,
                                    check_baseline=baselines, check_coords=False)
    assert report.is_valid, report.to_xml()
    return parse(str(path), silence=True)


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, etree.XMLSchema]:
    """The official PAGE 2019 and ALTO 4.4 schemas (as the format tests load them)."""
    return test_layout_formats.schemas.__wrapped__(tmp_path_factory)


@pytest.fixture
def blank(project: Project, tmp_path: Path) -> tuple[Project, int, Path]:
    """A project holding one blank 600×800 scan named page.png."""
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.new("RGB", (WIDTH, HEIGHT), "white").save(scans / "page.png")
    import_scans(project, [scans])
    (row,) = list_images(project)
    return project, row.id, scans


def _file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(project: Project, category: str | None = None) -> list[Annotation]:
    with project.unit_of_work() as session:
        query = select(Annotation).join(Category)
        if category is not None:
            query = query.where(Category.name == category)
        return list(session.scalars(query.order_by(Annotation.id)))


def _mask(project: Project, rows: list[Annotation]) -> np.ndarray:
    union = np.zeros((HEIGHT, WIDTH), np.uint8)
    for row in rows:
        x, y, w, h = row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h
        box = [{"exterior": [x, y, x + w, y, x + w, y + h, x, y + h], "holes": []}]
        union |= rasterise(row.polygons or (None if row.rle else box), row.rle, HEIGHT, WIDTH)
    return union


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    return float((first & second).sum() / (first | second).sum())


# 1. ALTO lines keep their spaces.

def test_the_kant_page_in_alto_reads_as_alto_readers_read_it_with_its_spaces(project: Project, shared_data: Path,
                                                                             tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(shared_data / "manuscripts" / f"{KANT}.tif", scans)
    import_scans(project, [scans])
    truth = read_page(shared_data / "manuscripts" / f"{KANT}.page.xml")
    report = import_layout_files(project, [shared_data / "manuscripts" / f"{KANT}.page.xml"], "page")
    assert not report.refused
    alto = export_layouts(project, tmp_path / "alto", "alto").files[0]
    page = export_layouts(project, tmp_path / "page", "page").files[0]
    true_lines = [line.text for region in truth.regions for line in region.lines]
    # The ground truth itself splits punctuation into words of its own and has baselines beyond their lines:
    # OCR-D's lax check (whitespace aside), as OCR-D's own workflows read it.
    page_lines = [line.get_TextEquiv()[0].Unicode
                  for region in ocrd_reads(page, "lax", baselines=False).get_Page().get_AllRegions(
                      classes=["Text"], order="reading-order") for line in region.get_TextLine()]
    assert alto_line_texts(alto) == page_lines == true_lines
    assert "Berliniſche Monatsſchrift." in true_lines[0]


# 2, 8. Files written the way kraken writes them.

KRAKEN_ALTO = f"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="{ALTO_NS}">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>page.png</fileName></sourceImageInformation></Description>
  <Tags><OtherTag ID="type_1" LABEL="default" TYPE="baselines"/></Tags>
  <Layout><Page ID="p" WIDTH="{WIDTH}" HEIGHT="{HEIGHT}" PHYSICAL_IMG_NR="0"><PrintSpace>
    <TextBlock ID="block_1" HPOS="50" VPOS="50" WIDTH="500" HEIGHT="100">
      <TextLine ID="l1" HPOS="60" VPOS="60" WIDTH="300" HEIGHT="30" BASELINE="60,85 360,85">
        <String ID="s1" HPOS="60" VPOS="60" WIDTH="120" HEIGHT="30" CONTENT="Berliniſche"/><SP WIDTH="10"/>
        <String ID="s2" HPOS="190" VPOS="60" WIDTH="170" HEIGHT="30" CONTENT="Monatsſchrift."/>
      </TextLine>
    </TextBlock>
    <TextBlock ID="orphans">
      <TextLine ID="l2" HPOS="60" VPOS="300" WIDTH="400" HEIGHT="30" BASELINE="60,325 460,325">
        <String ID="s3" HPOS="60" VPOS="300" WIDTH="100" HEIGHT="30" CONTENT="Was"/><SP WIDTH="10"/>
        <String ID="s4" HPOS="170" VPOS="300" WIDTH="80" HEIGHT="30" CONTENT="iſt"/><SP/>
        <String ID="s5" HPOS="260" VPOS="300" WIDTH="200" HEIGHT="30" CONTENT="Aufklärung?"/>
      </TextLine>
      <TextLine ID="l3" HPOS="60" VPOS="400" WIDTH="200" HEIGHT="30">
        <String ID="s6" HPOS="60" VPOS="400" WIDTH="200" HEIGHT="30" CONTENT="&amp; &lt; &quot; '"/>
      </TextLine>
    </TextBlock>
  </PrintSpace></Page></Layout>
</alto>"""


def test_a_kraken_alto_keeps_lines_outside_regions_and_comes_back_with_its_spaces(blank, tmp_path: Path) -> None:
    project, _, scans = blank
    report = import_layout_files(project, [_file(scans, "page.xml", KRAKEN_ALTO)], "alto")
    (_, done, notes), = report.imported
    assert (done.regions, done.lines, done.words) == (2, 3, 6), notes
    assert any("without coordinates were outlined around their lines" in note for note in notes), notes
    (orphans,) = [row for row in _rows(project, "Paragraph") if row.bbox_y > 200]
    assert (orphans.bbox_x, orphans.bbox_y, orphans.bbox_w, orphans.bbox_h) == (60, 300, 400, 130)
    written = export_layouts(project, tmp_path / "out", "alto").files[0]
    assert alto_line_texts(written) == ["Berliniſche Monatsſchrift.", "Was iſt Aufklärung?", "& < \" '"]


KRAKEN_PAGE_SPACES = f"""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="{PAGE_NS}"><Metadata><Creator>kraken</Creator><Created>2026-01-01T00:00:00</Created>
<LastChange>2026-01-01T00:00:00</LastChange></Metadata>
<Page imageFilename="page.png" imageWidth="{WIDTH}" imageHeight="{HEIGHT}">
  <TextRegion id="r1" custom="structure {{type:Main;}}"><Coords points="50,50 550,50 550,150 50,150"/>
    <TextLine id="l1"><Coords points="60,60 360,60 360,90 60,90"/><Baseline points="60,85 360,85"/>
      <Word id="w1"><Coords points="60,60 180,60 180,90 60,90"/><TextEquiv><Unicode>Sapere</Unicode></TextEquiv></Word>
      <Word id="w2"><Coords points="180,60 190,60 190,90 180,90"/><TextEquiv><Unicode> </Unicode></TextEquiv></Word>
      <Word id="w3"><Coords points="190,60 360,60 360,90 190,90"/><TextEquiv><Unicode>aude!</Unicode></TextEquiv></Word>
      <TextEquiv><Unicode>Sapere aude!</Unicode></TextEquiv>
    </TextLine>
  </TextRegion>
</Page></PcGts>"""


def test_spaces_written_as_words_are_not_words_and_a_region_type_of_another_tool_is_kept(blank,
                                                                                         tmp_path: Path) -> None:
    project, _, scans = blank
    (_, done, notes), = import_layout_files(project, [_file(scans, "page.xml", KRAKEN_PAGE_SPACES)],
                                             "page").imported
    assert done.words == 2 and any("holding only spaces" in note for note in notes), notes
    assert [row.name for row in _categories(project) if row.name == "Main"] == ["Main"]
    written = export_layouts(project, tmp_path / "out", "page").files[0]
    page = ocrd_reads(written)  # strict: the line's text is its words' joined by spaces
    (region,) = page.get_Page().get_AllRegions()
    assert "structure {type:Main;}" in region.get_custom()
    assert [word.get_TextEquiv()[0].Unicode for word in region.get_TextLine()[0].get_Word()] == ["Sapere", "aude!"]


def _categories(project: Project) -> list[Category]:
    with project.unit_of_work() as session:
        return list(session.scalars(select(Category)))


# 3, 6, 7. Transkribus-style PAGE: a region with empty coordinates, its own types, right-to-left lines.

TRANSKRIBUS_PAGE = f"""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="{PAGE_NS}"><Metadata><Creator>Transkribus</Creator><Created>2026-01-01T00:00:00</Created>
<LastChange>2026-01-01T00:00:00</LastChange></Metadata>
<Page imageFilename="page.png" imageWidth="{WIDTH}" imageHeight="{HEIGHT}">
  <TextRegion id="r1" type="paragraph" custom="readingOrder {{index:0;}} structure {{type:Paratext;}}">
    <Coords points=""/>
    <TextLine id="l1" custom="readingOrder {{index:0;}}"><Coords points="100,100 300,100 300,130 100,130"/>
      <TextEquiv><Unicode>erste Zeile</Unicode></TextEquiv></TextLine>
    <TextLine id="l2"><Coords points="100,140 300,140 300,170 100,170"/>
      <TextEquiv><Unicode>zweite Zeile</Unicode></TextEquiv></TextLine>
  </TextRegion>
  <TextRegion id="r2" type="paragraph" readingDirection="right-to-left">
    <Coords points="50,300 550,300 550,420 50,420"/>
    <TextLine id="l3" readingDirection="right-to-left"><Coords points="60,310 540,310 540,350 60,350"/>
      <TextEquiv><Unicode>שלום עולם</Unicode></TextEquiv></TextLine>
    <TextLine id="l4" readingDirection="right-to-left"><Coords points="60,360 540,360 540,400 60,400"/>
      <TextEquiv><Unicode>مرحبا بالعالم</Unicode></TextEquiv></TextLine>
  </TextRegion>
  <TextRegion id="r3" type="marginalia"><Coords points="560,50 590,50 590,200 560,200"/></TextRegion>
</Page></PcGts>"""


def test_a_transkribus_page_keeps_every_line_its_own_types_and_right_to_left_writing(blank, tmp_path: Path,
                                                                                    schemas) -> None:
    project, _, scans = blank
    (_, done, notes), = import_layout_files(project, [_file(scans, "page.xml", TRANSKRIBUS_PAGE)],
                                             "page").imported
    assert (done.regions, done.lines) == (3, 4), notes
    assert any("outlined around their lines" in note for note in notes), notes
    assert {row.name for row in _categories(project)} >= {"Paratext", "Paragraph", "Marginal note"}
    assert {row.writing_direction for row in _rows(project, "Line") if "\u05e9" in (row.text or "")
            or "\u0645" in (row.text or "")} == {"right-to-left"}

    written = export_layouts(project, tmp_path / "page", "page").files[0]
    regions = ocrd_reads(written).get_Page().get_AllRegions(order="reading-order")
    assert "structure {type:Paratext;}" in (regions[0].get_custom() or "")
    assert regions[1].get_readingDirection() == "right-to-left"
    assert [line.get_readingDirection() for line in regions[1].get_TextLine()] == ["right-to-left"] * 2
    assert regions[2].get_type() == "marginalia"

    alto = export_layouts(project, tmp_path / "alto", "alto").files[0]
    tree = etree.parse(str(alto))
    assert schemas["alto"].validate(tree) and schemas["page"].validate(etree.parse(str(written)))
    directions = [line.get("BASEDIRECTION") for line in tree.iter(f"{{{ALTO_NS}}}TextLine")]
    assert directions == [None, None, "rtl", "rtl"]
    labels = {tag.get("LABEL") for tag in tree.iter(f"{{{ALTO_NS}}}LayoutTag")}
    assert {"Paratext", "paragraph", "marginalia"} <= labels
    again = Project.create(tmp_path / "again")
    with again:
        shutil.copytree(scans, tmp_path / "again-scans")
        import_scans(again, [tmp_path / "again-scans"])
        (_, back, _), = import_layout_files(again, [alto], "alto").imported
        assert (back.regions, back.lines) == (3, 4)
        assert {row.name for row in _categories(again)} >= {"Paratext", "Marginal note"}
        assert sorted(row.writing_direction or "" for row in _rows(again, "Line")) == [
            "", "", "right-to-left", "right-to-left"]


# 4, 5. Shapes of every kind, out and back in.

def _ring() -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[100:300, 100:300] = 1
    mask[150:250, 150:250] = 0
    return mask


SHAPES = {
    "mask": lambda: Geometry(rle=rle_from_mask(_block(300, 500, 100, 300))),
    "ring mask": lambda: Geometry(rle=rle_from_mask(_ring())),
    "square with a hole": lambda: Geometry(polygons=[{"exterior": [320, 100, 520, 100, 520, 300, 320, 300],
                                                      "holes": [[370, 150, 470, 150, 470, 250, 370, 250]]}]),
    "two parts": lambda: Geometry(polygons=[{"exterior": [320, 320, 400, 320, 400, 400, 320, 400], "holes": []},
                                            {"exterior": [450, 320, 560, 330, 520, 420], "holes": []}]),
    "box": lambda: Geometry(bbox=(30.0, 600.0, 150.5, 80.25)),
    "polygon": lambda: Geometry(polygons=[{"exterior": [350, 600, 550, 620, 500, 760, 380, 700], "holes": []}]),
}


def _block(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_every_kind_of_shape_comes_back_as_drawn_or_the_summary_says_why(blank, tmp_path: Path, fmt: str,
                                                                         schemas) -> None:
    project, image_id, scans = blank
    for name, geometry in SHAPES.items():
        category = add_category(project, name.capitalize()).id
        create_annotations(project, image_id=image_id, category_id=category, creator="Ada",
                           geometries=[geometry()], provenances=[Provenance()])
    drawn = {name: _mask(project, _rows(project, name.capitalize())) for name in SHAPES}
    done = export_layouts(project, tmp_path / "out", fmt)
    summary = done.summary()
    assert "2 hole(s) were written as a cut two pixels wide" in summary, summary
    assert "1 shape(s) in several parts were written as a region per part" in summary, summary
    written = done.files[0].read_text(encoding="utf-8")
    assert schemas[fmt].validate(etree.parse(str(done.files[0]))), schemas[fmt].error_log
    if fmt == "page":
        ocrd_reads(done.files[0])
        assert 'points="100,300 100,500 300,500 300,300"' in written or "300,500" in written
    else:
        assert 'HPOS="100" VPOS="300" WIDTH="200" HEIGHT="200"' in written  # pixel edges, not centres
    again = Project.create(tmp_path / "again")
    with again:
        shutil.copytree(scans, tmp_path / "again-scans")
        import_scans(again, [tmp_path / "again-scans"])
        assert not import_layout_files(again, done.files, fmt).refused
        for name in SHAPES:
            back = _mask(again, _rows(again, name.capitalize()))
            assert _iou(back, drawn[name]) >= 0.99, (name, _iou(back, drawn[name]))


# 9. Proposals keep their scores and stay proposals.

def test_proposals_are_written_with_their_scores_marked_as_proposals_and_come_back_so(blank, tmp_path: Path,
                                                                                      schemas) -> None:
    project, image_id, scans = blank
    initial = add_category(project, "Decorated initial").id
    create_annotations(project, image_id=image_id, category_id=initial, creator="model",
                       geometries=[Geometry(bbox=(10.0, 10.0, 100.0, 100.0))], provenances=[Provenance(score=0.875)],
                       status=AnnotationStatus.PROPOSED)
    create_annotations(project, image_id=image_id, category_id=initial, creator="Ada",
                       geometries=[Geometry(bbox=(300.0, 300.0, 50, 60))], provenances=[Provenance()])
    for fmt in ("page", "alto"):
        done = export_layouts(project, tmp_path / fmt, fmt, include_proposals=True)
        assert schemas[fmt].validate(etree.parse(str(done.files[0]))), schemas[fmt].error_log
        if fmt == "page":
            regions = ocrd_reads(done.files[0]).get_Page().get_AllRegions()
            confs = {(region.get_Coords().get_conf(), "status:proposed" in (region.get_custom() or ""))
                     for region in regions}
            assert confs == {(0.875, True), (None, False)}, confs
        again = Project.create(tmp_path / f"again-{fmt}")
        with again:
            shutil.copytree(scans, tmp_path / f"scans-{fmt}")
            import_scans(again, [tmp_path / f"scans-{fmt}"])
            assert not import_layout_files(again, done.files, fmt).refused
            back = {(row.status, row.score) for row in _rows(again, "Decorated initial")}
            assert back == {(AnnotationStatus.PROPOSED, 0.875), (AnnotationStatus.ACCEPTED, None)}, back


def test_coco_boxes_recomputed_by_half_a_pixel_are_not_reported_as_corrected(project: Project, tmp_path: Path) -> None:
    import json

    from engine.coco.importer import import_coco

    Image.new("RGB", (WIDTH, HEIGHT), "white").save(tmp_path / "page.png")
    import_scans(project, [tmp_path / "page.png"])
    polygon = [10.0, 10.0, 30.0, 10.0, 30.0, 25.0, 10.0, 25.0]
    coco = {"images": [{"id": 1, "file_name": "page.png", "width": WIDTH, "height": HEIGHT}],
            "categories": [{"id": 1, "name": "Initial"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon], "area": 300.0,
                 "bbox": [9.5, 9.5, 21.0, 16.0], "iscrowd": 0},  # FiftyOne's box: half a pixel out
                {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[100, 100, 140, 100, 140, 130, 100, 130]],
                 "area": 1200.0, "bbox": [90.0, 100.0, 40.0, 30.0], "iscrowd": 0}]}  # ten pixels out
    (tmp_path / "coco.json").write_text(json.dumps(coco), encoding="utf-8")
    outcome = import_coco(project, tmp_path / "coco.json")
    assert outcome.annotations_added == 2 and outcome.annotations_corrected == 1, outcome
    assert "[90.0, 100.0, 40.0, 30.0]" in outcome.corrections[0]


def test_the_mask_edges_of_a_pycocotools_rle_are_the_pixel_edges(blank, tmp_path: Path) -> None:
    """A 200×200 mask at (100, 300) spans x 100–300 and y 300–500 in both formats (not …299, …499)."""
    project, image_id, _ = blank
    category = add_category(project, "Seal").id
    rle = mask_utils.encode(np.asfortranarray(_block(300, 500, 100, 300)))
    rle["counts"] = rle["counts"].decode()
    create_annotations(project, image_id=image_id, category_id=category, creator="Ada",
                       geometries=[Geometry(rle=rle)], provenances=[Provenance()])
    page = export_layouts(project, tmp_path / "page", "page").files[0]
    (region,) = ocrd_reads(page).get_Page().get_AllRegions()
    xs = [int(point.split(",")[0]) for point in region.get_Coords().points.split()]
    ys = [int(point.split(",")[1]) for point in region.get_Coords().points.split()]
    assert (min(xs), max(xs), min(ys), max(ys)) == (100, 300, 300, 500)
    alto = etree.parse(str(export_layouts(project, tmp_path / "alto", "alto").files[0]))
    (block,) = alto.iter(f"{{{ALTO_NS}}}Illustration")
    assert [block.get(name) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] == ["100", "300", "200", "200"]


TESSERACT_ALTO = f"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v3#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>page.png</fileName></sourceImageInformation></Description>
  <Layout><Page WIDTH="{WIDTH}" HEIGHT="{HEIGHT}" PHYSICAL_IMG_NR="0" ID="page_0"><PrintSpace>
    <ComposedBlock ID="cblock_0" HPOS="40" VPOS="40" WIDTH="520" HEIGHT="200">
      <TextBlock ID="block_0" HPOS="50" VPOS="50" WIDTH="500" HEIGHT="80">
        <TextLine ID="line_0" HPOS="60" VPOS="60" WIDTH="480" HEIGHT="30">
          <String ID="string_0" HPOS="60" VPOS="60" WIDTH="150" HEIGHT="30" WC="0.96" CONTENT="Selbſtverſchuldet"/>
          <SP WIDTH="12" VPOS="60" HPOS="210"/>
          <String ID="string_1" HPOS="222" VPOS="60" WIDTH="60" HEIGHT="30" WC="0.91" CONTENT="iſt"/>
          <SP WIDTH="12" VPOS="60" HPOS="282"/>
          <String ID="string_2" HPOS="294" VPOS="60" WIDTH="200" HEIGHT="30" WC="0.5" CONTENT="Unmün"/>
          <HYP CONTENT="-"/>
        </TextLine>
      </TextBlock>
    </ComposedBlock>
  </PrintSpace></Page></Layout>
</alto>"""


def test_a_tesseract_alto_in_a_composed_block_keeps_its_confidences_and_hyphen(blank, tmp_path: Path) -> None:
    project, _, scans = blank
    (_, done, notes), = import_layout_files(project, [_file(scans, "page.xml", TESSERACT_ALTO)], "alto").imported
    assert (done.regions, done.lines, done.words) == (1, 1, 3), notes
    (line,) = _rows(project, "Line")
    assert line.text == "Selbſtverſchuldet iſt Unmün-"
    assert sorted(row.score for row in _rows(project, "Word")) == [0.5, 0.91, 0.96]
    again = export_layouts(project, tmp_path / "out", "alto").files[0]
    assert alto_line_texts(again) == ["Selbſtverſchuldet iſt Unmün-"]
    assert sorted(float(node.get("WC")) for node in etree.parse(str(again)).iter(f"{{{ALTO_NS}}}String")) == [
        0.5, 0.91, 0.96]
