"""Brush, eraser and "convert to polygon" change exactly the pixels they should, in page-sized RLE."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engine.annotations import AnnotationRecord, Geometry, annotations_of, create_annotation, update_geometry
from engine.coco.geometry import rasterise, rle_from_mask
from engine.mask_editing import MaskEditError, paint, rle_from_window, to_polygon
from engine.store.types import AnnotationStatus, SourceKind

W, H = 120, 90


def _record(rle=None, polygons=None, bbox=(0, 0, 0, 0)) -> AnnotationRecord:
    from datetime import UTC, datetime

    if rle is not None:
        x, y, w, h = mask_utils.toBbox({"size": rle["size"], "counts": rle["counts"].encode()}).tolist()
        bbox = (x, y, w, h)
    now = datetime.now(UTC)
    return AnnotationRecord(id=1, image_id=1, category_id=1, bbox_x=bbox[0], bbox_y=bbox[1], bbox_w=bbox[2],
                            bbox_h=bbox[3], polygons=polygons, rle=rle, area=0.0, iscrowd=False,
                            source_kind=SourceKind.MODEL, source_model="sam", source_version="", prompt="",
                            score=0.9, status=AnnotationStatus.ACCEPTED, creator="", created_at=now,
                            updated_at=now, session_id=None, model_run_id=None, reviewed_by="", reviewed_at=None,
                            reviewed_session_id=None)


def _mask(geometry: Geometry) -> np.ndarray:
    return rasterise(None, geometry.rle, H, W)


def test_an_rle_built_from_a_window_equals_encoding_the_whole_page() -> None:
    rng = np.random.default_rng(2)
    for left, top, w, h in ((0, 0, W, H), (10, 5, 30, 20), (W - 7, H - 3, 7, 3), (50, 0, 1, H)):
        window = (rng.random((h, w)) > 0.5).astype(np.uint8)
        page = np.zeros((H, W), dtype=np.uint8)
        page[top:top + h, left:left + w] = window
        assert rle_from_window(window, left, top, W, H) == rle_from_mask(page)


def test_brush_adds_and_eraser_removes_the_stroke_and_nothing_else() -> None:
    page = np.zeros((H, W), dtype=np.uint8)
    page[20:40, 20:60] = 1
    record = _record(rle=rle_from_mask(page))
    painted = paint(record, W, H, [(70.0, 30.0), (90.0, 30.0)], radius=3)
    after = _mask(painted)
    added = (after == 1) & (page == 0)
    assert not ((after == 0) & (page == 1)).any()  # a brush never takes pixels away
    ys, xs = np.nonzero(added)
    assert 66 <= xs.min() <= 68 and 92 <= xs.max() <= 94 and 26 <= ys.min() <= 28 and 32 <= ys.max() <= 34
    assert added.sum() == pytest.approx(23 * 7, rel=0.15)  # a 20-px stroke 6–7 px wide, with round ends
    erased = _mask(paint(_record(rle=painted.rle), W, H, [(30.0, 10.0), (30.0, 50.0)], radius=2, erase=True))
    gone = (after == 1) & (erased == 0)
    assert gone.any() and set(np.nonzero(gone)[1]) <= set(range(27, 34))  # a vertical cut through x = 30
    assert not ((erased == 1) & (after == 0)).any()  # the eraser never adds
    assert painted.polygons  # polygons come with it, for editing


def test_the_brush_paints_on_polygons_and_boxes_and_starts_new_masks() -> None:
    square = [{"exterior": [10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0], "holes": []}]
    before = rasterise(square, None, H, W)
    after = _mask(paint(_record(polygons=square, bbox=(10, 10, 20, 20)), W, H, [(50.0, 50.0)], radius=4))
    assert ((after == 1) & (before == 1)).sum() == before.sum() and after.sum() > before.sum()
    boxed = _mask(paint(_record(bbox=(5, 5, 10, 10)), W, H, [(100.0, 80.0)], radius=2))
    assert boxed[5:15, 5:15].all() and boxed[80, 100] == 1
    fresh = _mask(paint(None, W, H, [(60.0, 45.0)], radius=5))
    assert fresh[45, 60] == 1 and 60 <= fresh.sum() <= 100  # a disc of radius 5
    with pytest.raises(MaskEditError):
        paint(None, W, H, [(1.0, 1.0)], radius=3, erase=True)
    with pytest.raises(MaskEditError, match="leave nothing"):
        paint(_record(bbox=(5, 5, 4, 4)), W, H, [(7.0, 7.0)], radius=9, erase=True)


def test_convert_to_polygon_keeps_the_pixels(project, tmp_path) -> None:
    from PIL import Image

    from engine.categories import add_category
    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images

    Image.new("RGB", (W, H), "white").save(tmp_path / "page.png")
    import_scans(project, [tmp_path / "page.png"])
    page = list_images(project)[0]
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[10:50, 15:70] = 1
    mask[20:30, 30:40] = 0  # a hole
    record = create_annotation(project, image_id=page.id, category_id=add_category(project, "Initial").id,
                               geometry=Geometry(rle=rle_from_mask(mask)), creator="sam")
    polygon = to_polygon(record, W, H)
    assert polygon.rle is None and polygon.polygons[0]["holes"]
    saved = update_geometry(project, record.id, polygon)
    assert saved.rle is None and np.array_equal(rasterise(saved.polygons, None, H, W), mask)
    assert saved.area == pytest.approx(mask.sum(), rel=1e-3)  # the outline encloses the mask's pixels
    with pytest.raises(MaskEditError, match="already"):
        to_polygon(annotations_of(project, page.id)[0], W, H)
