"""COCO export and import: round trip, pycocotools validation, bad files."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sqlalchemy import select

import samples
from engine.categories import find_category
from engine.coco.exporter import export_coco
from engine.coco.importer import import_coco
from engine.errors import CocoFormatError
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Annotation, Category, Image
from engine.store.types import AnnotationStatus, SourceKind

SIZES = {"folio_1r.png": (320, 240), "folio_1v.png": (300, 400), "sub/plate.jpg": (256, 256)}


@pytest.fixture
def project(any_project):
    """Store tests run on both databases: SQLite, then PostgreSQL (``tests/team_fixtures.py``)."""
    return any_project


def _mask_with_hole(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[20:120, 30:200] = 1
    mask[50:90, 80:150] = 0
    return mask


def _dataset() -> dict:
    height, width = 240, 320
    compressed = mask_utils.encode(np.asfortranarray(_mask_with_hole(height, width)))
    crowd = np.zeros((400, 300), dtype=np.uint8)
    crowd[300:380, 10:290] = 1
    # Uncompressed RLE (column-major run lengths, starting with background), as
    # COCO's iscrowd annotations carry it.
    flat = crowd.flatten(order="F")
    boundaries = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(boundaries).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {
        "info": {"description": "Handschriften"},
        "images": [
            {"id": 10, "file_name": "folio_1r.png", "width": 320, "height": 240},
            {"id": 11, "file_name": "folio_1v.png", "width": 300, "height": 400},
            {"id": 12, "file_name": "sub/plate.jpg", "width": 256, "height": 256},
        ],
        "categories": [
            {"id": 1, "name": "Zierinitiale", "supercategory": "Buchschmuck"},
            {"id": 2, "name": "Wappen – coat of arms", "supercategory": ""},
            {"id": 3, "name": "印章 (seal)", "supercategory": ""},
            {"id": 4, "name": "Lettre ornée", "supercategory": "Buchschmuck"},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50], [100, 100, 150, 100, 125, 140]],
             "bbox": [10, 10, 140, 130], "area": 3000.0},
            {"id": 2, "image_id": 10, "category_id": 2, "iscrowd": 0,
             "segmentation": {"size": [height, width], "counts": compressed["counts"].decode()}},
            {"id": 3, "image_id": 11, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [400, 300], "counts": counts}},
            {"id": 4, "image_id": 12, "category_id": 4, "iscrowd": 0,
             "segmentation": [[20.5, 30.25, 200, 30, 210, 180, 25, 190]]},
            {"id": 5, "image_id": 11, "category_id": 1, "iscrowd": 0,
             "segmentation": [[5, 5, 50, 5, 50, 60]], "bbox": [5, 5, 45, 55], "area": 1237.5,
             "score": 0.42, "attributes": {"status": "proposed", "source": "model",
                                           "model": "sam-vit-b", "prompt": "initial"}},
        ],
    }


@pytest.fixture
def annotated(project: Project, tmp_path: Path) -> tuple[Project, Path]:
    for name, size in SIZES.items():
        writer = samples.write_jpeg if name.endswith(".jpg") else samples.write_png
        writer(Path(tmp_path / "scans" / name).parent.mkdir(parents=True, exist_ok=True) or
               tmp_path / "scans" / name, size)
    import_scans(project, [tmp_path / "scans"])
    coco_file = tmp_path / "in.json"
    coco_file.write_text(json.dumps(_dataset(), ensure_ascii=False), encoding="utf-8")
    return project, coco_file


def _masks(coco: COCO) -> dict[tuple[str, str], np.ndarray]:
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    files = {i["id"]: i["file_name"] for i in coco.loadImgs(coco.getImgIds())}
    return {(files[a["image_id"]], names[a["category_id"]]): coco.annToMask(a)
            for a in coco.loadAnns(coco.getAnnIds())}


def _quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_round_trip_keeps_geometry_areas_and_unicode_names(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    report = import_coco(project, coco_file)
    assert report.annotations_added == 5 and report.problems == []
    assert "Buchschmuck" in report.categories_created
    out = tmp_path / "out.json"
    export_coco(project, out, include_proposals=True)

    original, exported = _quiet_coco(coco_file), _quiet_coco(out)
    assert set(_masks(exported)) == set(_masks(original))
    for key, mask in _masks(original).items():
        assert np.array_equal(_masks(exported)[key], mask), key
    def areas(coco: COCO) -> dict[tuple[str, str], float]:
        names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
        files = {i["id"]: i["file_name"] for i in coco.dataset["images"]}
        return {(files[a["image_id"]], names[a["category_id"]]): a.get("area")
                for a in coco.dataset["annotations"]}

    from engine.coco.geometry import area_of, polygons_from_coco

    for annotation in original.dataset["annotations"]:
        key = (next(i["file_name"] for i in original.dataset["images"] if i["id"] == annotation["image_id"]),
               next(c["name"] for c in original.dataset["categories"] if c["id"] == annotation["category_id"]))
        segmentation = annotation.get("segmentation")
        if annotation.get("area") is not None:
            expected = annotation["area"]  # a written area that agrees with the shape is kept as written
        elif isinstance(segmentation, list) and segmentation:  # a polygon's enclosed area, measured
            expected = area_of(polygons_from_coco(segmentation), None, 0, 0)
        else:  # a mask's pixel count
            expected = float(mask_utils.area(mask_utils.encode(np.asfortranarray(_masks(original)[key]))))
        assert areas(exported)[key] == pytest.approx(expected), key
    names = {c["name"]: c["supercategory"] for c in exported.dataset["categories"]}
    assert names["Zierinitiale"] == "Buchschmuck" and names["印章 (seal)"] == ""
    assert "印章" in out.read_text(encoding="utf-8")  # written as text, not \\u escapes
    files = {i["file_name"] for i in exported.dataset["images"]}
    assert files == set(SIZES)


def test_export_is_accepted_by_cocoeval(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    import_coco(project, coco_file)
    with project.unit_of_work() as session:  # a plain box, as the box tool will make
        image = session.scalars(select(Image).where(Image.path.endswith("plate.jpg"))).one()
        category = find_category(session, "Lettre ornée")
        session.add(Annotation(image_id=image.id, category_id=category.id, bbox_x=5, bbox_y=6,
                               bbox_w=40, bbox_h=30, area=1200, source_kind=SourceKind.HUMAN,
                               status=AnnotationStatus.ACCEPTED))
    out = tmp_path / "gt.json"
    export_coco(project, out)
    ground_truth = _quiet_coco(out)
    detections = [dict(a, score=1.0) for a in ground_truth.dataset["annotations"]]
    for iou_type in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            results = ground_truth.loadRes([dict(d) for d in detections])
            evaluation = COCOeval(ground_truth, results, iou_type)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        assert evaluation.stats[0] > 0.99, iou_type  # perfect detections give AP 1.0


def test_proposals_are_left_out_unless_asked(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    import_coco(project, coco_file)
    export_coco(project, tmp_path / "accepted.json")
    export_coco(project, tmp_path / "all.json", include_proposals=True)
    accepted = json.loads((tmp_path / "accepted.json").read_text())["annotations"]
    everything = json.loads((tmp_path / "all.json").read_text())["annotations"]
    assert len(accepted) == 4 and len(everything) == 5
    (proposal,) = [a for a in everything if a["attributes"]["status"] == "proposed"]
    assert proposal["score"] == 0.42
    assert proposal["attributes"]["model"] == "sam-vit-b"
    assert all(a["attributes"]["status"] == "accepted" for a in accepted)


def test_reimporting_the_same_file_adds_nothing(annotated) -> None:
    project, coco_file = annotated
    import_coco(project, coco_file)
    second = import_coco(project, coco_file)
    assert (second.annotations_added, second.already_present) == (0, 5)
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Annotation)).all()) == 5
        assert len(session.scalars(select(Category)).all()) == 5


def test_box_and_holes_survive_our_own_round_trip(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    with project.unit_of_work() as session:
        image = session.scalars(select(Image).where(Image.path.endswith("folio_1r.png"))).one()
        category = Category(name="Frame", colour="#000000")
        session.add(category)
        session.flush()
        ring = [[50.0, 50.0, 250.0, 50.0, 250.0, 200.0, 50.0, 200.0]]
        hole = [[100.0, 100.0, 200.0, 100.0, 200.0, 150.0, 100.0, 150.0]]
        session.add(Annotation(image_id=image.id, category_id=category.id, bbox_x=50, bbox_y=50,
                               bbox_w=200, bbox_h=150, area=25000.0,
                               polygons=[{"exterior": ring[0], "holes": hole}],
                               source_kind=SourceKind.HUMAN, status=AnnotationStatus.ACCEPTED))
    out = tmp_path / "holes.json"
    export_coco(project, out)
    (exported,) = json.loads(out.read_text())["annotations"]
    assert isinstance(exported["segmentation"], dict)  # holes need RLE in COCO
    mask = _quiet_coco(out).annToMask(exported)
    assert mask[75, 75] == 1 and mask[125, 150] == 0
    assert mask_utils.area(mask_utils.encode(np.asfortranarray(mask))) == pytest.approx(25000, rel=0.03)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"images": {}}', "not a COCO dataset"),
    ("[1, 2, 3]", "not a COCO dataset"),
])
def test_unreadable_coco_files_fail_clearly(project: Project, tmp_path: Path, content: str,
                                            message: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(CocoFormatError, match=message):
        import_coco(project, path)


def test_bad_annotations_are_skipped_with_reasons_and_the_rest_lands(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    data = _dataset()
    data["images"].append({"id": 99, "file_name": "not-in-project.png", "width": 10, "height": 10})
    data["images"][2]["width"] = 999  # plate.jpg is 256 wide in the project
    data["annotations"] += [
        {"id": 50, "image_id": 10, "category_id": 1, "segmentation": [[1, 2, 3]]},
        {"id": 51, "image_id": 10, "category_id": 77, "bbox": [1, 1, 2, 2]},
        {"id": 52, "image_id": 10, "category_id": 2, "segmentation": {"size": [5, 5], "counts": "0"}},
        {"id": 53, "image_id": 10, "category_id": 2, "bbox": [1, 1, -4, 2]},
        {"id": 54, "image_id": 99, "category_id": 2, "bbox": [1, 1, 2, 2]},
        {"id": 55, "image_id": 10, "category_id": 2, "bbox": [1, 1, 2, 2], "score": 7},
    ]
    coco_file.write_text(json.dumps(data), encoding="utf-8")
    report = import_coco(project, coco_file)
    text = "\n".join(report.problems)
    assert report.annotations_added == 4  # the plate's annotation is skipped with its image
    for expected in ("annotation 50", "unknown category_id 77", "annotation 52", "annotation 53",
                     "'not-in-project.png' (id 99) is not in the project", "999×256 in the COCO file",
                     "annotation 55"):
        assert expected in text, expected
    # Every annotation of the file is either added or counted as skipped.
    assert report.annotations_added + report.already_present + report.annotations_skipped \
        == len(data["annotations"])


def test_images_are_matched_by_hash_when_names_differ(annotated, tmp_path: Path) -> None:
    project, coco_file = annotated
    import_coco(project, coco_file)
    out = tmp_path / "export.json"
    export_coco(project, out)
    data = json.loads(out.read_text())
    for image in data["images"]:
        image["file_name"] = "renamed/" + image["file_name"].replace("/", "_") + ".renamed"
    with Project.create(tmp_path / "second") as second:
        import_scans(second, [tmp_path / "scans"])
        renamed = tmp_path / "renamed.json"
        renamed.write_text(json.dumps(data))
        report = import_coco(second, renamed)
    assert report.problems == [] and report.annotations_added == 4


def test_an_images_root_that_holds_no_page_is_refused(annotated, tmp_path: Path) -> None:
    from engine.errors import MarginaliaError

    project, _ = annotated
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(MarginaliaError, match="not inside the images folder"):
        export_coco(project, tmp_path / "out.json", image_root=elsewhere)
    assert not (tmp_path / "out.json").exists()


def test_a_window_of_an_rle_mask_matches_the_whole_mask_decoded() -> None:
    import numpy as np
    from pycocotools import mask as mask_utils

    from engine.coco.geometry import rasterise, rasterise_window, rle_counts, rle_from_mask

    rng = np.random.default_rng(4)
    for height, width in ((37, 53), (300, 200), (1, 9), (9, 1), (2, 40_000)):
        mask = (rng.random((height, width)) > 0.6).astype(np.uint8)
        mask[: height // 3] = 1  # long runs as well as short ones
        mask[:, width // 2: width // 2 + 3] = 1  # runs over several whole columns
        rle = rle_from_mask(mask)
        uncompressed = {"size": [height, width], "counts": rle_counts(rle).tolist()}
        assert rle_counts(rle).sum() == height * width
        assert np.array_equal(mask_utils.decode(mask_utils.frPyObjects(uncompressed, height, width)), mask)
        for _ in range(20):
            left, top = int(rng.integers(0, width)), int(rng.integers(0, height))
            w, h = int(rng.integers(1, width + 5)), int(rng.integers(1, height + 5))
            expected = rasterise(None, rle, height, width)[top:top + h, left:left + w]
            assert np.array_equal(rasterise_window(rle, left, top, w, h), expected)
            assert np.array_equal(rasterise_window(uncompressed, left, top, w, h), expected)


def test_moving_a_polygon_by_a_fraction_keeps_its_area(project, tmp_path: Path) -> None:
    from engine.annotations import Geometry, create_annotation, update_geometry
    from engine.categories import add_category
    from engine.inventory import list_images

    samples.write_png(tmp_path / "page.png", (400, 300))
    import_scans(project, [tmp_path / "page.png"])
    page = list_images(project)[0]
    star = [{"exterior": [100.3, 50.7, 180.1, 90.2, 150.9, 170.4, 90.6, 160.8, 70.2, 100.1],
             "holes": [[110.0, 100.0, 130.0, 100.0, 120.0, 120.0]]}]
    record = create_annotation(project, image_id=page.id, category_id=add_category(project, "Seal").id,
                               geometry=Geometry(polygons=star), creator="Ada")
    for dx, dy in ((0.37, 0.0), (12.5, -3.25), (-0.01, 40.49)):
        moved = [{"exterior": [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(part["exterior"])],
                  "holes": [[v + (dx if i % 2 == 0 else dy) for i, v in enumerate(h)] for h in part["holes"]]}
                 for part in star]
        assert update_geometry(project, record.id, Geometry(polygons=moved)).area == pytest.approx(record.area,
                                                                                                  rel=1e-9)
    from engine.coco.geometry import rasterise

    assert record.area == pytest.approx(float(rasterise(star, None, 300, 400).sum()), rel=0.01)  # the same shape


def test_many_rle_windows_at_once_match_each_decoded_alone() -> None:
    import numpy as np

    from engine.coco.geometry import rasterise_window, rasterise_windows, rle_counts, rle_from_mask

    rng = np.random.default_rng(9)
    rles, windows = [], []
    for height, width in ((37, 53), (300, 200), (1, 9), (9, 1), (2, 4_000), (64, 64), (5, 5)):
        for _ in range(6):
            mask = (rng.random((height, width)) > rng.uniform(0.2, 0.9)).astype(np.uint8)
            mask[: height // 3] = rng.integers(0, 2)  # long runs as well as short ones
            mask[:, width // 2: width // 2 + 3] = 1  # runs over several whole columns
            rle = rle_from_mask(mask)
            if rng.random() < 0.3:
                rle = {"size": [height, width], "counts": rle_counts(rle).tolist()}  # uncompressed spelling
            left, top = int(rng.integers(-2, width)), int(rng.integers(-2, height))
            rles.append(rle)
            windows.append((left, top, int(rng.integers(0, width + 5)), int(rng.integers(0, height + 5))))
    rles.append(rle_from_mask(np.zeros((7, 7), np.uint8)))  # nothing painted
    windows.append((0, 0, 7, 7))
    together = rasterise_windows(rles, windows)
    assert len(together) == len(rles)
    for rle, window, mask in zip(rles, windows, together, strict=True):
        assert np.array_equal(mask, rasterise_window(rle, *window)), window
    assert rasterise_windows([], []) == []
