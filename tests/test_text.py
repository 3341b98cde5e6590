"""Finding text with Hi-SAM: window stitching, grouping words into lines and lines into paragraphs, reading
order, Matrix NMS; end to end with the tiny Hi-SAM on shared scans (a consistent hierarchy, resumable)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from engine.annotations import descendants
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from engine.store.schema import Annotation, Category
from engine.store.types import AnnotationStatus
from engine.text.hierarchy import (LinePiece, TextOptions, _LineDecodes, _rows, _words_of_lines, assemble, mask_iou,
                                   matrix_nms, read_text, xy_cut)
from engine.text.masks import PageMask
from engine.text.run import find_text, page_windows
from engine.text.windows import plan_windows, stitch
from tests.cli_runner import run_cli

MODEL = "hi-sam-vit-b"
# The tiny random model scores everything low: keep what it finds, from few points (two batches a window).
LOOSE = TextOptions(window=256, line_score=-1e9, nms_score=-1e9, points=8, batch=4, stroke_threshold=-1e9,
                    min_word_area=4)


def test_windows_cover_the_page_and_stitching_them_gives_the_unwindowed_logits() -> None:
    rng = np.random.default_rng(3)
    page = rng.normal(size=(700, 1100)).astype(np.float32)  # a constructed page of logits
    windows = plan_windows(1100, 700, 512)
    assert len(windows) > 4 and all(w.width <= 512 and w.height <= 512 for w in windows)
    stitched = stitch(1100, 700, windows, lambda w: page[w.y0:w.y1, w.x0:w.x1])
    assert np.allclose(stitched, page, atol=1e-6)
    assert ((stitched > 0) == (page > 0)).all()  # the mask is the unwindowed mask
    # Neighbours side by side overlap by at least a fifth of their side, one above the other by an eighth.
    xs, ys = sorted({w.x0 for w in windows}), sorted({w.y0 for w in windows})
    assert all(b - a <= 512 * 0.8 for a, b in zip(xs, xs[1:], strict=False))
    assert all(b - a <= 512 * 0.875 for a, b in zip(ys, ys[1:], strict=False))
    assert len(plan_windows(2577, 3633, 1024)) == 12  # the SBB scan: 3 × 4
    assert plan_windows(900, 700, 1024) == plan_windows(900, 700, None)  # fits: the whole page at once
    with pytest.raises(ValueError, match="uncovered"):
        stitch(1100, 700, windows[:1], lambda w: page[w.y0:w.y1, w.x0:w.x1])


def _box(x0: int, y0: int, x1: int, y1: int) -> PageMask:
    mask = np.ones((y1 - y0, x1 - x0), bool)
    return PageMask(x0, y0, mask)


def test_a_masks_pieces_are_its_8_connected_components_at_their_page_places() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((120, 200)) > 0.8  # hundreds of specks, some touching diagonally
    mask[40:60, 10:190] = True  # and one long bar
    whole = PageMask.of(mask, 1000, 2000)
    assert whole is not None
    pieces = whole.components(min_area=3)
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    expected = {(int(xs.min()) + 1000, int(ys.min()) + 2000, frozenset(zip(ys.tolist(), xs.tolist())))
                for label in range(1, count) for ys, xs in [np.nonzero(labels == label)] if len(ys) >= 3}
    got = {(p.x0, p.y0, frozenset((int(y) + p.y0 - 2000, int(x) + p.x0 - 1000) for y, x in zip(*np.nonzero(p.mask))))
           for p in pieces}
    assert len(pieces) > 50 and got == expected
    assert [(p.x0, p.y0) for p in pieces] == sorted((p.x0, p.y0) for p in pieces)  # left to right
    assert all(p.area >= 3 and p.mask.any(axis=0).all() and p.mask.any(axis=1).all() for p in pieces)  # cropped


def test_constructed_words_group_into_the_expected_lines_and_paragraphs() -> None:
    """Two windows (x 0–600 and 400–1000) see a long line each in part, its words in the overlap twice, and
    their paragraph groups; a second paragraph stands apart, lower on the page."""
    words_a = [_box(20, 10, 150, 40), _box(170, 10, 390, 40), _box(420, 10, 560, 40)]
    words_b = [_box(420, 10, 560, 40), _box(580, 10, 760, 40), _box(780, 10, 990, 40)]
    second_line = [_box(20, 60, 300, 90)]
    third_line = [_box(600, 60, 950, 90)]
    far = [_box(100, 400, 300, 430), _box(320, 400, 500, 430)]
    pieces = [
        LinePiece(_box(20, 10, 600, 40), 0.9, words_a, (0, 0)),
        LinePiece(_box(20, 60, 300, 90), 0.8, second_line, (0, 0)),
        LinePiece(_box(400, 10, 990, 40), 0.7, words_b, (1, 5)),
        LinePiece(_box(600, 60, 950, 90), 0.6, third_line, (1, 5)),
        LinePiece(_box(100, 400, 500, 430), 0.95, far, (0, 1)),
    ]
    paragraphs = assemble(pieces)
    assert [len(p.lines) for p in paragraphs] == [3, 1]  # reading order: the upper paragraph first
    first = paragraphs[0]
    assert first.mask.box == (20, 10, 990, 90) and first.score == 0.9
    long_line = first.lines[0]
    assert long_line.mask.box == (20, 10, 990, 40)  # the two windows' pieces joined
    assert [w.box[0] for w in long_line.words] == [20, 170, 420, 580, 780]  # the overlap's word once
    assert [line.mask.box[1] for line in first.lines] == [10, 60, 60]
    assert [w.box for w in paragraphs[1].lines[0].words] == [(100, 400, 300, 430), (320, 400, 500, 430)]


def test_reading_order_keeps_columns_and_puts_a_heading_first() -> None:
    heading = (100, 50, 900, 120)
    left = [(100, 200, 480, 400), (100, 420, 480, 700)]
    right = [(520, 200, 900, 500), (520, 520, 900, 690)]
    footer = (100, 800, 900, 850)
    boxes = [right[1], left[1], footer, right[0], heading, left[0]]
    assert [boxes[i] for i in xy_cut(boxes)] == [heading, left[0], left[1], right[0], right[1], footer]


def test_mask_iou_counts_every_pixel_of_masks_of_any_size() -> None:
    """Counted a block of pixels at a time: the same IoU as the whole masks' products, for sizes that are not a
    multiple of the block, an empty mask, one mask."""
    rng = np.random.default_rng(5)
    for shape in [(1, 7, 9), (6, 100, 90), (5, 256, 256)]:
        masks = rng.random(shape) > rng.uniform(0.2, 0.9, (shape[0], 1, 1))
        masks[-1] = False if shape[0] > 1 else masks[-1]
        flat = masks.reshape(len(masks), -1).astype(np.int64)
        inter = flat @ flat.T
        union_ = flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter
        expected = np.where(union_ > 0, inter / np.maximum(union_, 1), 0)
        assert np.allclose(mask_iou(masks), expected, rtol=0, atol=1e-6)
    assert mask_iou(np.zeros((0, 4, 4), bool)).shape == (0, 0)


def test_rows_of_batches_are_the_rows_of_their_concatenation() -> None:
    rng = np.random.default_rng(6)
    batches = [rng.random((size, 2, 3)) for size in (3, 0, 2, 4)]
    indices = np.array([8, 0, 4, 3, 2, 5])
    assert np.array_equal(_rows(batches, indices), np.concatenate(batches)[indices])
    assert _rows(batches, np.array([], int)).shape == (0, 2, 3)


def test_matrix_nms_decays_duplicates_and_keeps_distinct_lines() -> None:
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 2:6, 2:30] = True
    masks[1, 2:6, 3:30] = True  # nearly the first
    masks[2, 20:24, 2:30] = True  # another line
    scores = np.array([0.9, 0.85, 0.8])
    decayed = matrix_nms(masks, scores)
    assert decayed[0] == pytest.approx(0.9) and decayed[2] == pytest.approx(0.8)
    assert decayed[1] < 0.5 < decayed[2]


@pytest.fixture
def text_setup(project: Project, model_store, shared_data: Path, tmp_path: Path):
    model_store.add_tiny(MODEL)
    scans = tmp_path / "scans"
    scans.mkdir()
    # The smallest pages that still need windows: 160×287 is read in two overlapping 256-px windows,
    # 160×217 in one (each window costs a 1024-px encode and its decodes, even with the tiny model).
    for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg"):
        Image.open(shared_data / "manuscripts" / name).convert("RGB").reduce(10).save(scans / f"{name}.png")
    import_scans(project, [scans])
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    return project, service, [row.id for row in list_images(project)]


def _text_annotations(project: Project) -> tuple[dict[int, Annotation], dict[int, str]]:
    with project.unit_of_work() as session:
        rows = {a.id: a for a in session.scalars(select(Annotation))}
        names = {c.id: c.name for c in session.scalars(select(Category))}
    return rows, names


def test_an_end_to_end_run_stores_a_consistent_hierarchy_and_resumes(text_setup) -> None:
    """Seconds: two pages read at every level, three times (cancelled, resumed, skipped), by the tiny Hi-SAM."""
    project, service, pages = text_setup
    levels = {"strokes", "paragraphs", "lines", "words"}
    token = CancelToken()

    rows = list_images(project)
    first_page, both_pages = page_windows(rows[0], LOOSE), page_windows(rows[0], LOOSE) + page_windows(rows[1], LOOSE)
    assert (first_page, both_pages) == (2, 3)

    def stop_after_the_first_page(progress) -> None:  # noqa: ANN001
        assert progress.total == both_pages  # the bar counts windows, over both pages
        if progress.done == first_page:  # the first page's last window
            token.cancel()

    with pytest.raises(JobCancelled):
        find_text(project, service, MODEL, pages, levels, LOOSE, creator="Ada", progress=stop_after_the_first_page,
                  cancel=token)
    rows, names = _text_annotations(project)
    assert {a.image_id for a in rows.values()} == {pages[0]}  # the finished page kept
    report = find_text(project, service, MODEL, pages, levels, LOOSE, creator="Ada")
    assert report.pages == 1 and report.skipped == 1  # only the second page was read again
    rows, names = _text_annotations(project)
    for page in pages:
        mine = [a for a in rows.values() if a.image_id == page]
        by_level = {level: [a for a in mine if names[a.category_id] == level]
                    for level in ("Text strokes", "Paragraph", "Line", "Word")}
        assert len(by_level["Text strokes"]) == 1 and by_level["Paragraph"] and by_level["Line"] and by_level["Word"]
        assert all(a.status is AnnotationStatus.PROPOSED and a.source_model == MODEL for a in mine)
        for level, parent_level in (("Line", "Paragraph"), ("Word", "Line")):
            for child in by_level[level]:
                parent = rows[child.parent_id]  # the parent exists …
                assert names[parent.category_id] == parent_level and parent.image_id == page
                assert parent.bbox_x - 0.5 <= child.bbox_x and parent.bbox_y - 0.5 <= child.bbox_y  # … and holds it
                assert child.bbox_x + child.bbox_w <= parent.bbox_x + parent.bbox_w + 0.5
                assert child.bbox_y + child.bbox_h <= parent.bbox_y + parent.bbox_h + 0.5
        for siblings in _siblings(mine).values():  # reading order: 0, 1, 2 … among each parent's children
            assert sorted(a.reading_order for a in siblings) == list(range(len(siblings)))
    again = find_text(project, service, MODEL, pages, levels, LOOSE, creator="Ada")
    assert again.pages == 0 and again.skipped == 2 and len(_text_annotations(project)[0]) == len(rows)


def _siblings(annotations: list[Annotation]) -> dict[object, list[Annotation]]:
    groups: dict[object, list[Annotation]] = {}
    for annotation in annotations:
        if annotation.reading_order is not None:
            groups.setdefault(annotation.parent_id, []).append(annotation)
    return groups


def test_the_same_page_gives_the_same_text_and_levels_can_be_left_out(text_setup) -> None:
    """Seconds: the same page is read twice by the tiny Hi-SAM, each window a 1024-px encode."""
    project, service, pages = text_setup
    first = find_text(project, service, MODEL, pages[:1], {"lines"}, LOOSE, creator="Ada")
    rows, names = _text_annotations(project)
    assert first.lines == len(rows) > 0 and {names[a.category_id] for a in rows.values()} == {"Line"}
    assert all(a.parent_id is None for a in rows.values())  # no paragraphs asked for: lines stand alone
    boxes = sorted((a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h) for a in rows.values())
    with project.unit_of_work() as session:
        for annotation in session.scalars(select(Annotation)):
            session.delete(annotation)
    find_text(project, service, MODEL, pages[:1], {"lines"}, LOOSE, creator="Ada")
    assert sorted((a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h) for a in _text_annotations(project)[0].values()) == boxes


def test_the_words_of_kept_lines_are_the_same_from_their_first_decode_as_from_a_second(text_setup) -> None:
    """Seconds: a page read twice by the tiny Hi-SAM: every kept line's words from what its point's decode left
    (the default), then only three lines' a window (the lowest scores decoded again)."""
    project, service, pages = text_setup
    row = next(r for r in list_images(project) if r.id == pages[0])
    image = np.asarray(Image.open(row.path).convert("RGB"))
    network = service.run(MODEL, lambda n: n)
    one = network.levels_and_word_inputs(network.encode(image[:64, :64])[0], np.array([[5.0, 5.0]]))[2][0].nbytes

    def lines(budget: int) -> list:
        found = read_text(network, image, dataclasses.replace(LOOSE, word_inputs_bytes=budget))
        return [line for paragraph in found.paragraphs for line in paragraph.lines]

    everything, some = lines(LOOSE.word_inputs_bytes), lines(3 * one)
    assert sum(len(line.words) for line in everything) > 0  # words were found
    # The same lines and words. Decoded again in other batches, logits may differ in the last bits on other
    # processors' kernels, and a pixel at 0 may flip: the shapes agree to a pixel's width, not bit for bit.
    assert len(some) == len(everything)
    for again, first in zip(some, everything, strict=True):
        assert max(abs(a - b) for a, b in zip(again.mask.box, first.mask.box, strict=True)) <= 2
        assert again.mask.iou(first.mask) >= 0.99 and abs(len(again.words) - len(first.words)) <= 1


@pytest.mark.cpu_only("its byte budget is counted in float32 tokens; a GPU keeps half precision ones")
def test_each_lines_words_come_from_its_own_points_decode(text_setup) -> None:
    """Seconds: one encode and a few decodes of the tiny Hi-SAM."""
    project, service, pages = text_setup
    row = next(r for r in list_images(project) if r.id == pages[0])
    network = service.run(MODEL, lambda n: n)
    embedding = network.encode(np.asarray(Image.open(row.path).convert("RGB")))[0]
    points = np.array([[100, 100], [600, 300], [300, 800], [900, 900], [50, 700]], np.float32)
    one = network.levels_and_word_inputs(embedding, points[:1])[2][0].nbytes
    lines = _LineDecodes(network, embedding, dataclasses.replace(LOOSE, word_inputs_bytes=3 * one), None)
    lines.decode(points[:3])
    lines.decode(points[3:])
    scores = np.concatenate(lines.scores)
    best = scores[np.argsort(-scores[:, 0])[:3], 1].astype(int).tolist()
    assert sorted(lines.word_inputs) == sorted(best)  # the three best lines' inputs kept, the others dropped
    order = np.array([4, 0, 2, 1, 3])
    regions = [(0, 256, 0, 256), (40, 200, 10, 250), (0, 256, 0, 256), (0, 100, 0, 100), (0, 256, 0, 256)]
    found = _words_of_lines(network, embedding, points, order, regions, 2, lines.word_inputs)
    expected = network.levels(embedding, points[order], regions=regions)[2]
    # the same values, to the rounding of other batch sizes (1e-8 here; bf16 kernels elsewhere may round more),
    # while the points' words differ by 7e-3
    assert all(np.allclose(got, want, rtol=0, atol=1e-3) for got, want in zip(found, expected, strict=True))
    assert not np.allclose(expected[0], expected[2], rtol=0, atol=2e-3)  # a mix-up of points would show


def test_a_line_whose_kept_tokens_do_not_cover_its_region_is_decoded_again(text_setup) -> None:
    """Seconds: one encode and a few decodes of the tiny Hi-SAM."""
    project, service, pages = text_setup
    row = next(r for r in list_images(project) if r.id == pages[0])
    network = service.run(MODEL, lambda n: n)
    embedding = network.encode(np.asarray(Image.open(row.path).convert("RGB")))[0]
    points = np.array([[100, 100], [600, 300]], np.float32)
    _, _, inputs = network.levels_and_word_inputs(embedding, points)
    kept = {0: network.word_inputs_for(inputs[0], (100, 120, 100, 140)),
            1: network.word_inputs_for(inputs[1], (0, 256, 0, 256))}
    decoded: list[int] = []

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(network, name)

        def levels_and_word_inputs(self, embedding, points):  # noqa: ANN001, ANN202
            decoded.append(len(points))
            return network.levels_and_word_inputs(embedding, points)

    regions = [(0, 256, 0, 256), (10, 60, 10, 60)]  # point 0's kept tokens cover a smaller box
    found = _words_of_lines(Counting(), embedding, points, np.array([0, 1]), regions, 2, kept)
    assert decoded == [1]  # point 0 only, decoded again
    expected = network.levels(embedding, points, regions=regions)[2]
    assert all(np.allclose(got, want, rtol=0, atol=1e-3) for got, want in zip(found, expected, strict=True))


def test_accepting_a_paragraph_reaches_its_proposed_lines_and_words(text_setup) -> None:
    """Seconds: every window of a page costs the tiny Hi-SAM a 1024-px encode and its decodes."""
    project, service, pages = text_setup
    find_text(project, service, MODEL, pages[:1], {"paragraphs", "lines", "words"}, LOOSE, creator="Ada")
    rows, names = _text_annotations(project)
    paragraph = next(a for a in rows.values() if names[a.category_id] == "Paragraph")
    lines = [a.id for a in rows.values() if a.parent_id == paragraph.id]
    words = [a.id for a in rows.values() if a.parent_id in lines]
    assert sorted(descendants(project, [paragraph.id])) == sorted(lines + words)
    with project.unit_of_work() as session:
        session.get(Annotation, lines[0]).status = AnnotationStatus.REJECTED
    proposed = descendants(project, [paragraph.id], AnnotationStatus.PROPOSED)
    assert lines[0] not in proposed and set(proposed) == set(lines[1:] + words)


def test_the_command_line_finds_text_and_says_what_it_did(text_setup) -> None:
    """Seconds: every window of a page costs the tiny Hi-SAM a 1024-px encode and its decodes."""
    project, service, pages = text_setup
    project.close()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MARGINALIA_DEVICE": "cpu",
           "MARGINALIA_MODELS": str(service.store.root)}
    result = run_cli("text", str(project.folder), "--pages", str(pages[0]), "--levels", "lines,words", "--window",
                     "256", "--points", "8", "--line-score", "-1000", "--stroke-threshold", "-1000", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pages"] == 1 and report["lines"] > 0 and report["paragraphs"] == 0
    bad = run_cli("text", str(project.folder), "--all", "--levels", "glyphs", env=env)
    assert bad.returncode == 1 and "glyphs" in bad.stderr


def test_a_page_where_nothing_is_found_is_not_read_again(text_setup) -> None:
    """Seconds: every window of a page costs the tiny Hi-SAM a 1024-px encode."""
    project, service, pages = text_setup
    strict = TextOptions(window=256, points=8, batch=8)  # the random model's logits are all below 0: no ink
    first = find_text(project, service, MODEL, pages[:1], {"strokes", "lines"}, strict, creator="Ada")
    assert first.pages == 1 and first.strokes == first.lines == 0 and not _text_annotations(project)[0]
    again = find_text(project, service, MODEL, pages[:1], {"strokes", "lines"}, strict, creator="Ada")
    assert again.pages == 0 and again.skipped == 1
    words = find_text(project, service, MODEL, pages[:1], {"words"}, strict, creator="Ada")
    assert words.pages == 1  # a level not asked for before is read


def test_only_windows_with_a_stroke_like_mark_are_read(shared_data: Path) -> None:
    """Blank paper, scanner noise and a stain are not read; a printed page, one small digit, one faint digit
    and white ink on a dark ground are."""
    import cv2

    from engine.text.windows import might_hold_text

    rng = np.random.default_rng(1)
    paper = np.clip(rng.normal(232, 4, (1024, 1024, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    stained = paper.copy()
    cv2.circle(stained, (500, 400), 120, (200, 190, 170), -1)
    stained = cv2.GaussianBlur(stained, (0, 0), 25)
    assert not might_hold_text(paper) and not might_hold_text(stained)
    for colour, ground in (((60, 60, 60), paper), ((200, 200, 200), paper), ((250, 250, 250), paper // 5)):
        marked = ground.copy()
        cv2.putText(marked, "7", (500, 500), cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2)
        assert might_hold_text(marked), colour
    with Image.open(shared_data / "manuscripts" / "SBB0000F29300010000_0002.tif") as scan:
        endpaper = np.asarray(scan.convert("RGB"))
    assert not might_hold_text(endpaper[1957:2981, 518:1542])  # a blank, stained middle of the endpaper
    assert might_hold_text(endpaper[0:1024, 0:1024])  # its shelfmarks


def test_a_blank_page_is_not_read_unless_every_window_is_asked_for(text_setup, tmp_path: Path) -> None:
    """Seconds: the page read whole once, through the tiny Hi-SAM."""
    project, service, _ = text_setup
    rng = np.random.default_rng(2)
    Image.fromarray(np.clip(rng.normal(232, 4, (200, 300)), 0, 255).astype(np.uint8)).convert("RGB").save(
        tmp_path / "blank.png")
    [page] = import_scans(project, [tmp_path / "blank.png"]).results[0].image_ids
    skipping = TextOptions(**{**LOOSE.__dict__, "window": 256})  # everything the model sees counts as ink
    skipped = find_text(project, service, MODEL, [page], {"strokes"}, skipping, creator="Ada")
    assert skipped.pages == 1 and skipped.strokes == 0  # no window of blank paper was read
    every = TextOptions(**{**skipping.__dict__, "skip_blank": False})
    read = find_text(project, service, MODEL, [page], {"lines"}, every, creator="Ada")
    assert read.pages == 1 and read.lines > 0 and read.prompts > 0
