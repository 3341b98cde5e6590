"""W3C Web Annotations out and in: pages imported from IIIF (canvases twice the size of their images) give
their shapes back in canvas coordinates; local scans get a generated manifest with their images; what is
written parses with iiif-prezi3's models and follows the Web Annotation model; export → import gives the same
shapes (IoU ≥ 0.99); annotations as Annotorious, Mirador (3 and 2) and Recogito write them come in onto the
right pages; what cannot be placed is refused with its reason."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import iiif_prezi3
import numpy as np
import pytest
import shapely
from PIL import Image

from engine.annotations import Geometry, annotations_of, create_annotation, set_text
from engine.categories import add_category
from engine.coco.geometry import rasterise, rle_from_mask
from engine.export_files import ExportConflictError
from engine.iiif.importer import import_manifest
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.webannotation.export import export_web_annotations
from engine.webannotation.importer import AnnotationFileError, import_web_annotations
from engine.webannotation.selectors import read_svg
from tests.iiif_server import ImageServer

BASE = "https://example.org/book1/"
_FRAGMENT = re.compile(r"^xywh=pixel:\d+,\d+,\d+,\d+$")


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[ImageServer]:
    source = Image.open(shared_data / "manuscripts" / "dannhauer_catechismus04_1653_0585.jpg").convert("RGB")
    started = ImageServer(source.crop((0, 0, 400, 300)))
    for number in range(2):
        started.service(f"s{number}", 3, source=source.crop((40 * number, 0, 400 + 40 * number, 300)))
    started.documents["/book/manifest.json"] = json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{started.base}/book/manifest.json",
        "type": "Manifest", "label": {"en": ["Book"]},
        "items": [{"id": f"{started.base}/book/canvas/{number}", "type": "Canvas", "label": {"none": [f"f. {number}"]},
                   "width": 800, "height": 600,  # twice the image: every coordinate doubles on the canvas
                   "items": [{"id": f"{started.base}/book/canvas/{number}/p", "type": "AnnotationPage",
                              "items": [{"id": f"{started.base}/book/canvas/{number}/a", "type": "Annotation",
                                         "motivation": "painting", "target": f"{started.base}/book/canvas/{number}",
                                         "body": {"id": f"{started.base}/s{number}/full/max/0/default.jpg",
                                                  "type": "Image", "service": [{"id": f"{started.base}/s{number}",
                                                                                "type": "ImageService3"}]}}]}]}
                  for number in range(2)]}).encode()
    yield started
    started.http.shutdown()


def _shapes(project: Project, image_id: int) -> list[tuple[str, bool, np.ndarray, str | None]]:
    page = next(row for row in list_images(project) if row.id == image_id)
    names = {category.id: category.name for category in _categories(project)}
    return [(names[a.category_id], a.is_box, rasterise(a.polygons, a.rle, page.height, page.width) if not a.is_box
             else _box_mask(a.bbox, page.height, page.width), a.text) for a in annotations_of(project, image_id)]


def _categories(project: Project):  # noqa: ANN202
    from engine.categories import list_categories

    return list_categories(project)


def _box_mask(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    x, y, w, h = box
    return rasterise([{"exterior": [x, y, x + w, y, x + w, y + h, x, y + h], "holes": []}], None, height, width)


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    return float((first & second).sum() / max((first | second).sum(), 1))


def _annotate(project: Project, image_id: int, height: int, width: int) -> None:
    initial, line = add_category(project, "decorated initial"), add_category(project, "line")
    mask = np.zeros((height, width), np.uint8)
    mask[40:140, 60:200] = 1
    mask[70:100, 100:150] = 0  # a hole
    mask[200:240, 20:60] = 1  # a second part
    create_annotation(project, image_id=image_id, category_id=initial.id, geometry=Geometry(rle=rle_from_mask(mask)),
                      creator="Ada")
    box = create_annotation(project, image_id=image_id, category_id=line.id,
                            geometry=Geometry(bbox=(10.5, 150.25, 120, 30)), creator="Ada")
    set_text(project, {box.id: "Vom Gebet"})
    create_annotation(project, image_id=image_id, category_id=line.id, creator="Ada",
                      geometry=Geometry(polygons=[{"exterior": [210, 20, 380, 30, 300, 200], "holes": []}]))


def _check_web_annotation_model(page: dict) -> None:
    """The Web Annotation model's requirements, checked on each annotation as written."""
    assert page["type"] == "AnnotationPage" and "http://www.w3.org/ns/anno.jsonld" in page["@context"]
    ids = [annotation["id"] for annotation in page["items"]]
    assert len(set(ids)) == len(ids) and all(i.startswith(page["id"] + "#") for i in ids)
    for annotation in page["items"]:
        assert annotation["type"] == "Annotation" and annotation["motivation"] in ("tagging", "supplementing")
        assert annotation["creator"]["name"] == "Ada" and annotation["generator"]["type"] == "Software"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$", annotation["created"])
        assert all(body["type"] == "TextualBody" and body["value"] for body in annotation["body"])
        target = annotation["target"]
        assert target["type"] == "SpecificResource" and target["source"]["type"] == "Canvas"
        kinds = {selector["type"]: selector["value"] for selector in target["selector"]}
        assert set(kinds) == {"SvgSelector", "FragmentSelector"} and _FRAGMENT.match(kinds["FragmentSelector"])
        assert re.fullmatch(r'<svg><path fill-rule="evenodd" '
                            r'd="(M[-\d.]+,[-\d.]+( L[-\d.]+,[-\d.]+)+ Z ?)+"/></svg>', kinds["SvgSelector"])


def test_iiif_pages_give_shapes_back_on_their_canvases_and_the_round_trip_is_exact(
        server: ImageServer, project: Project, tmp_path: Path) -> None:
    imported = import_manifest(project, f"{server.base}/book/manifest.json")
    first = min(imported.image_ids)
    _annotate(project, first, 300, 400)
    before = _shapes(project, first)
    done = export_web_annotations(project, tmp_path / "out", base_url=BASE)
    assert (done.pages, done.annotation_pages, done.annotations, done.images) == (2, 1, 3, 0), done.summary()

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    parsed = iiif_prezi3.Manifest(**manifest)
    assert [str(canvas.id) for canvas in parsed.items] == [f"{server.base}/book/canvas/{n}" for n in range(2)]
    assert (manifest["items"][0]["width"], manifest["items"][0]["height"]) == (800, 600)
    service = manifest["items"][0]["items"][0]["items"][0]["body"]["service"][0]
    assert (service["id"], service["type"]) == (f"{server.base}/s0", "ImageService3")
    page_reference = manifest["items"][0]["annotations"][0]["id"]
    page_file = tmp_path / "out" / "annotations" / "0001_f._0.json"
    page = json.loads(page_file.read_text("utf-8"))
    assert page["id"] == page_reference and iiif_prezi3.AnnotationPage(**page).items
    _check_web_annotation_model(page)
    box = next(a for a in page["items"] if a["motivation"] == "supplementing")
    assert box["target"]["source"]["id"] == f"{server.base}/book/canvas/0"
    assert box["target"]["source"]["partOf"][0]["id"] == f"{server.base}/book/manifest.json"
    # The box (10.5, 150.25) 120×30 on a 400×300 image is (21, 300.5) 240×60 on the 800×600 canvas.
    assert box["target"]["selector"][0]["value"] == "xywh=pixel:21,300,240,61"
    assert read_svg(box["target"]["selector"][1]["value"]).equals(shapely.box(21, 300.5, 261, 360.5))
    assert [body["value"] for body in box["body"]] == ["line", "Vom Gebet"]

    for annotation in annotations_of(project, first):  # the same page, emptied, takes them back
        from engine.annotations import delete_annotations

        delete_annotations(project, [annotation.id])
    report = import_web_annotations(project, [page_file])
    assert (report.added, report.refused, report.corrected) == (3, [], []), report.summary()
    after = _shapes(project, first)
    assert [(name, is_box, text) for name, is_box, _, text in after] == \
        [(name, is_box, text) for name, is_box, _, text in before]
    assert all(_iou(old[2], new[2]) >= 0.99 for old, new in zip(before, after, strict=True))
    again = import_web_annotations(project, [page_file])
    assert (again.added, again.already) == (0, 3), again.summary()


def test_local_scans_get_a_manifest_with_their_images_and_come_back_on_another_copy_of_the_project(
        shared_data: Path, tmp_path: Path, project: Project) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(shared_data / "artworks" / "turner_the_shipwreck_1805.jpg", scans / "Schiffbruch ä.jpg")
    Image.open(shared_data / "artworks" / "munch_the_scream_1893.jpg").save(scans / "scream.tif")
    import_scans(project, sorted(scans.iterdir()))
    pages = {Path(row.path).name: row for row in list_images(project)}
    turner = pages["Schiffbruch ä.jpg"]
    _annotate(project, turner.id, turner.height, turner.width)
    before = _shapes(project, turner.id)
    out = tmp_path / "w3c"
    done = export_web_annotations(project, out)
    assert (done.pages, done.images, done.annotations) == (2, 2, 3) and "file: address" in done.summary()
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    iiif_prezi3.Manifest(**manifest)
    bodies = {item["label"]["none"][0]: item["items"][0]["items"][0]["body"] for item in manifest["items"]}
    assert bodies["scream.tif"]["id"].endswith("/images/scream.png")  # a browser shows no TIFF
    assert bodies["Schiffbruch ä.jpg"]["id"] == (out / "images" / "Schiffbruch ä.jpg").as_uri()
    assert Image.open(out / "images" / "scream.png").size == (pages["scream.tif"].width, pages["scream.tif"].height)
    assert (out / "images" / "Schiffbruch ä.jpg").read_bytes() == (scans / "Schiffbruch ä.jpg").read_bytes()

    other = Project.create(tmp_path / "other")
    import_scans(other, [scans / "Schiffbruch ä.jpg"])  # the same scan, another project: found by its content
    report = import_web_annotations(other, sorted((out / "annotations").iterdir()))
    assert report.added == 3 and report.categories_created == ["decorated initial", "line"], report.summary()
    after = _shapes(other, list_images(other)[0].id)
    assert all(_iou(old[2], new[2]) >= 0.99 and old[:2] == new[:2] for old, new in zip(before, after, strict=True))
    with pytest.raises(ExportConflictError, match="from an earlier export"):
        export_web_annotations(project, out)
    (out / "manifest.json").write_text("{}")  # a file changed since: not the export's to replace any more
    with pytest.raises(ExportConflictError, match="never replaces a file it did not write"):
        export_web_annotations(project, out, overwrite=True)
    assert (out / "manifest.json").read_text() == "{}"


def _other_tools(canvas: str, service: str) -> list:
    """Annotations as Annotorious (its list, percent and pixel fragments, <polygon>), Mirador 3's annotation
    plug-in (an SVG <path> with curves) and Recogito (a transcription) write them."""
    return [
        {"@context": "http://www.w3.org/ns/anno.jsonld", "id": "#a1", "type": "Annotation",
         "body": [{"type": "TextualBody", "value": "coat of arms", "purpose": "tagging"},
                  {"type": "TextualBody", "value": "<p>a <b>fine</b> one</p>", "purpose": "commenting"}],
         "target": {"source": service, "selector": {"type": "FragmentSelector",
                                                    "conformsTo": "http://www.w3.org/TR/media-frags/",
                                                    "value": "xywh=percent:10,20,25,50"}}},
        {"id": "#a2", "type": "Annotation", "motivation": "tagging",
         "body": {"type": "TextualBody", "value": "initial"},
         "target": {"source": {"id": canvas, "type": "Canvas"},
                    "selector": {"type": "SvgSelector", "value": "<svg><polygon points='100,100 300,100 300,300 "
                                                                 "100,300'/></svg>"}}},
        {"id": "#a3", "type": "Annotation", "motivation": "commenting",
         "body": {"type": "TextualBody", "value": "<p>Stain</p>", "format": "text/html"},
         "target": {"source": canvas, "selector": [
             {"type": "SvgSelector", "value": '<svg xmlns="http://www.w3.org/2000/svg"><path xmlns="http://www.w3.org/'
                                              '2000/svg" d="M400,100c100,0 100,200 0,200c-100,0 -100,-200 0,-200z" '
                                              'data-paper-data="{}" fill="none"/></svg>'},
             {"type": "FragmentSelector", "value": "xywh=325,100,150,200"}]}},
        {"type": "Annotation", "id": "#a4", "body": [{"type": "TextualBody", "value": "Amen",
                                                      "purpose": "transcribing"}],
         "target": f"{canvas}#xywh=500,400,100,40"},
    ]


def _oval_area() -> float:
    """The canvas area inside the two cubic curves of the Mirador path above, from the curve's formula."""
    t = np.linspace(0, 1, 2001)[:, None]

    def cubic(p0, p1, p2, p3):  # noqa: ANN001, ANN202
        return ((1 - t) ** 3 * np.array(p0) + 3 * (1 - t) ** 2 * t * np.array(p1) + 3 * (1 - t) * t ** 2
                * np.array(p2) + t ** 3 * np.array(p3))

    points = np.vstack([cubic((400, 100), (500, 100), (500, 300), (400, 300)),
                        cubic((400, 300), (300, 300), (300, 100), (400, 100))])
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def test_annotations_from_annotorious_mirador_and_recogito_land_on_the_canvas_they_target(
        server: ImageServer, project: Project, tmp_path: Path) -> None:
    imported = import_manifest(project, f"{server.base}/book/manifest.json")
    second = max(imported.image_ids)
    canvas, service = f"{server.base}/book/canvas/1", f"{server.base}/s1"
    source = tmp_path / "annotorious.json"
    source.write_text(json.dumps(_other_tools(canvas, service)))
    report = import_web_annotations(project, [source], default_category="note")
    assert (report.added, report.refused, report.comments_not_kept) == (4, [], 2), report.summary()
    shapes = {text or name: (name, is_box, mask) for name, is_box, mask, text in _shapes(project, second)}
    # Canvas 800×600 → image 400×300: every coordinate halves.
    name, is_box, mask = shapes["coat of arms"]  # 10 %, 20 %, 25 %, 50 % of the canvas
    assert is_box and mask[60:210, 40:140].all() and mask.sum() == 150 * 100
    name, is_box, mask = shapes["initial"]
    assert is_box and mask[50:150, 50:150].all() and mask.sum() == 100 * 100
    name, is_box, mask = shapes["note"]  # Mirador's curved path: an oval 150 wide, 200 high on the canvas
    assert not is_box and abs(int(mask.sum()) - _oval_area() / 4) < 0.02 * _oval_area() / 4
    assert mask[100, 200] and mask[55, 200] and not mask[45, 200] and not mask[100, 160]
    name, is_box, mask = shapes["Amen"]
    assert (name, is_box, int(mask.sum())) == ("note", True, 50 * 20)


def test_mirador_2_annotation_lists_with_a_choice_of_selectors_come_in(server: ImageServer, project: Project,
                                                                       tmp_path: Path) -> None:
    imported = import_manifest(project, f"{server.base}/book/manifest.json")
    first = min(imported.image_ids)
    listed = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": "list", "@type": "sc:AnnotationList",
              "resources": [{"@id": "x", "@type": "oa:Annotation", "motivation": ["oa:tagging"],
                             "resource": [{"@type": "oa:Tag", "chars": "seal"}],
                             "on": {"@type": "oa:SpecificResource", "full": f"{server.base}/book/canvas/0",
                                    "selector": {"@type": "oa:Choice",
                                                 "default": {"@type": "oa:FragmentSelector",
                                                             "value": "xywh=0,0,200,200"},
                                                 "item": {"@type": "oa:SvgSelector",
                                                          "value": "<svg><path fill-rule='evenodd' d='M0,0 L200,0 "
                                                                   "L200,200 L0,200 Z M50,50 L150,50 L150,150 L50,150 "
                                                                   "Z'/></svg>"}}}}]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(listed))
    report = import_web_annotations(project, [path])
    assert report.added == 1, report.summary()
    (name, is_box, mask, _), = _shapes(project, first)
    assert (name, is_box, int(mask.sum())) == ("seal", False, 100 * 100 - 50 * 50)  # the hole kept


def test_what_cannot_be_placed_is_refused_with_its_reason_and_a_bad_file_changes_nothing(
        server: ImageServer, project: Project, tmp_path: Path) -> None:
    imported = import_manifest(project, f"{server.base}/book/manifest.json")
    canvas = f"{server.base}/book/canvas/0"
    annotations = [
        {"type": "Annotation", "id": "elsewhere", "body": [], "target": "https://other.org/canvas/9#xywh=0,0,9,9"},
        {"type": "Annotation", "id": "point", "body": [],
         "target": {"source": canvas, "selector": {"type": "PointSelector", "x": 4, "y": 5}}},
        {"type": "Annotation", "id": "whole", "body": [], "target": canvas},
        {"type": "Annotation", "id": "outside", "body": [], "target": f"{canvas}#xywh=900,700,10,10"},
        {"type": "Annotation", "id": "entity", "body": [], "target": {"source": canvas, "selector": {
            "type": "SvgSelector",
            "value": '<!DOCTYPE svg [<!ENTITY a "b">]><svg><rect width="9" height="9"/></svg>'}}},
        {"type": "Annotation", "id": "edge", "body": [], "target": f"{canvas}#xywh=700,500,200,200"},
    ]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"type": "AnnotationPage", "items": annotations}))
    report = import_web_annotations(project, [path])
    reasons = dict(line.split(": ", 1)[0].rsplit(" ", 1)[-1:] + [line.split(": ", 1)[1]] for line in report.refused)
    assert set(reasons) == {"elsewhere", "point", "whole", "outside", "entity"}, report.refused
    assert "no page here is the canvas https://other.org/canvas/9" in reasons["elsewhere"]
    assert "PointSelector" in reasons["point"] and "whole canvas" in reasons["whole"]
    assert "wholly outside" in reasons["outside"] and "entities" in reasons["entity"]
    assert report.added == 1 and "clipped to the page" in report.corrected[0]
    before = [len(annotations_of(project, image_id)) for image_id in imported.image_ids]
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "AnnotationPage", "items": [')
    with pytest.raises(AnnotationFileError, match="is not JSON"):
        import_web_annotations(project, [path, broken])
    (tmp_path / "empty.json").write_text('{"type": "Manifest", "items": []}')
    with pytest.raises(AnnotationFileError, match="holds no annotations"):
        import_web_annotations(project, [tmp_path / "empty.json"])
    assert [len(annotations_of(project, image_id)) for image_id in imported.image_ids] == before


def test_the_command_line_exports_for_a_web_address_and_imports_onto_a_chosen_page(
        shared_data: Path, tmp_path: Path, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.app import main

    import_scans(project, [shared_data / "artworks" / "van_gogh_starry_night_1889.jpg"])
    page = list_images(project)[0]
    _annotate(project, page.id, page.height, page.width)
    folder = str(project.folder)
    project.close()
    out = tmp_path / "published"
    assert main(["export", folder, "--format", "iiif", "--out", str(out), "--base-url", "https://example.org/x"]) == 0
    assert "3 annotation(s) on 1 page(s)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["id"] == "https://example.org/x/manifest.json"
    assert manifest["items"][0]["id"].startswith("https://example.org/x/canvas/")
    assert main(["export", folder, "--format", "w3c", "--out", str(tmp_path / "b"), "--base-url", "ftp://x"]) == 1
    assert "is not a web address" in capsys.readouterr().err
    annorious = tmp_path / "annotorious.json"
    annorious.write_text(json.dumps([{"type": "Annotation", "body": [{"value": "star", "purpose": "tagging"}],
                                      "target": {"source": "blob:http://localhost/123",
                                                 "selector": {"type": "FragmentSelector",
                                                              "value": "xywh=pixel:10,10,30,30"}}}]))
    assert main(["import-w3c", folder, str(annorious)]) == 1
    assert "no page here is the canvas blob:http://localhost/123" in capsys.readouterr().out
    assert main(["import-w3c", folder, str(annorious), "--page", str(page.id)]) == 0
    assert "1 annotation(s) added on 1 page(s)" in capsys.readouterr().out
