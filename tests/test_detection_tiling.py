"""Tiling large pages for the detector, and merging what the tiles found, on constructed boxes."""

from __future__ import annotations

import pytest

from engine.detection.tiling import (
    MIN_GAIN,
    TILE_BUDGET,
    Candidates,
    Found,
    Tiling,
    View,
    WholePage,
    iou,
    merge,
    page_views,
    plan_views,
)


def test_small_pages_are_seen_whole_and_large_ones_in_overlapping_tiles() -> None:
    assert plan_views(1000, 1400, 800, Tiling.AUTO) == [WholePage((0, 0, 1000, 1400))]  # 1000 < 1.5 × 800
    views = plan_views(2577, 3633, 800, Tiling.FINE)
    assert views[0].is_whole_page and len(views) > 1
    tiles = [v.box for v in views[1:]]
    assert all(x1 - x0 <= 800 and y1 - y0 <= 800 for x0, y0, x1, y1 in tiles)
    assert min(t[0] for t in tiles) == 0 and max(t[2] for t in tiles) == 2577  # the whole width …
    assert min(t[1] for t in tiles) == 0 and max(t[3] for t in tiles) == 3633  # … and height
    columns = sorted({t[0] for t in tiles})
    assert all(b - a <= 800 * 0.8 + 1 for a, b in zip(columns, columns[1:], strict=False))  # ≥ 20 % overlap
    assert len(views) == 25  # the whole page and 24 squares at the page's own scale
    assert plan_views(2577, 3633, 800, Tiling.OFF) == views[:1]
    assert len(plan_views(1000, 1400, 800, Tiling.ON, 1333)) > 1  # asked for: tiles even below the auto size


def test_a_pages_share_of_the_work_is_the_views_it_is_read_in() -> None:
    """What an estimate counts: the SBB scan is read as the whole page and two tiles, a painting's photograph
    whole; in fine squares, the scan is 25 views."""
    assert page_views(2577, 3633, Tiling.AUTO) == len(plan_views(2577, 3633, 800, Tiling.AUTO, 1333)) == 3
    assert page_views(1000, 800, Tiling.AUTO) == 1 and page_views(2577, 3633, Tiling.OFF) == 1
    assert page_views(2577, 3633, Tiling.FINE) == 25


@pytest.mark.parametrize(("width", "height"), [(2577, 3633), (3633, 2577), (5000, 7000), (1300, 1800), (2400, 2400)])
def test_tiling_on_uses_a_few_views_as_large_as_the_model_takes_them(width: int, height: int) -> None:
    views = plan_views(width, height, 800, Tiling.ON, 1333)
    assert plan_views(width, height, 800, Tiling.AUTO, 1333) in (views, views[:1])
    tiles = [view.box for view in views[1:]]
    assert 1 <= len(tiles) <= 4  # a few views
    assert min(t[0] for t in tiles) == 0 and max(t[2] for t in tiles) == width  # the whole page covered
    assert min(t[1] for t in tiles) == 0 and max(t[3] for t in tiles) == height
    whole = min(800 / min(width, height), 1333 / max(width, height))
    model_pixels = 0.0
    for x0, y0, x1, y1 in tiles:
        short, long = sorted((x1 - x0, y1 - y0))
        seen = min(800 / short, 1333 / long)  # the scale the model's processor gives the view
        assert seen >= whole * MIN_GAIN and seen <= 1.0 + 1e-9  # closer than the whole page, never enlarged
        model_pixels += short * long * seen * seen
    assert model_pixels <= TILE_BUDGET * width * height * whole * whole * 1.01  # under four untiled runs in all


def _seen_by(views: list, objects: list[tuple[float, float, float, float]], smallest: float) -> list[Found]:
    """A constructed detector: each view finds the part of each object it shows, when that part is at least
    ``smallest`` pixels across at the view's scale (a whole object scores 0.9, a part cut by the view 0.6)."""
    found = []
    for view in views:
        x0, y0, x1, y1 = view.box
        short, long = sorted((x1 - x0, y1 - y0))
        scale = min(800 / short, 1333 / long, 1.0) if not view.is_whole_page else min(800 / short, 1333 / long)
        for ox0, oy0, ox1, oy1 in objects:
            part = (max(x0, ox0), max(y0, oy0), min(x1, ox1), min(y1, oy1))
            if part[2] <= part[0] or part[3] <= part[1]:
                continue
            if min(part[2] - part[0], part[3] - part[1]) * scale < smallest:
                continue
            found.append(Found(part, 0.9 if part == (ox0, oy0, ox1, oy1) else 0.6, 0))
    return found


def test_large_views_find_the_boxes_the_fine_squares_find_on_a_constructed_page() -> None:
    """Stamps the whole page shrinks below sight, objects across view edges, a large woodcut: the few large
    views and the 24 squares end with the same boxes, each object once (for a detector that sees what is 24
    model pixels across)."""
    objects = [(300.0, 200.0, 364.0, 264.0), (2000.0, 3300.0, 2070.0, 3370.0),  # two stamps of 64–70 px
               (2320.0, 1950.0, 2560.0, 2150.0),  # an initial across a large view's edge (y = 2057)
               (600.0, 2400.0, 666.0, 3000.0),  # a rule 66 px wide across several squares
               (200.0, 800.0, 2300.0, 2200.0)]  # a woodcut as large as the page's width
    for tiling in (Tiling.FINE, Tiling.ON):
        views = plan_views(2577, 3633, 800, tiling, 1333)
        merged = merge(Candidates.of(_seen_by(views, objects, smallest=24)), views)
        assert sorted(f.box for f in merged) == sorted(objects), tiling
    # What the large views give up: a mark 40 px across (16 px in them, 40 in the squares) only fine tiles see.
    thin = [(600.0, 2400.0, 640.0, 3000.0)]
    for tiling, seen in ((Tiling.FINE, thin), (Tiling.ON, [])):
        views = plan_views(2577, 3633, 800, tiling, 1333)
        assert [f.box for f in merge(Candidates.of(_seen_by(views, thin, smallest=24)), views)] == seen


def test_a_tile_maps_its_boxes_back_to_page_pixels() -> None:
    tile = View((1600.0, 800.0, 2400.0, 1600.0))
    # The model saw the 800-px tile at 800 px: a box in its image is the same size on the page.
    assert tile.to_page((10, 20, 110, 220), 800, 800) == (1610, 820, 1710, 1020)
    # The whole page seen at a third of its size.
    assert WholePage((0, 0, 2400, 3600)).to_page((100, 100, 200, 300), 800, 1200) == (300, 300, 600, 900)


def test_a_box_cut_by_a_tile_edge_is_joined_with_its_continuation() -> None:
    page = WholePage((0, 0, 2000, 1000))
    left, right = View((0, 0, 1000, 1000)), View((800, 0, 1800, 1000))
    # An initial from x=700 to x=1300: the left tile sees it cut at its edge (x=1000), the right tile
    # sees it cut at its own edge (x=800), the whole page missed it.
    found = [Found((700, 400, 1000, 600), 0.6, 0), Found((800, 405, 1300, 598), 0.7, 0)]
    merged = merge(Candidates.of(found), [page, left, right])
    assert len(merged) == 1
    assert merged[0].box == (700, 400, 1300, 600) and merged[0].score == 0.7


def test_nms_is_per_phrase_and_keeps_the_best() -> None:
    page = WholePage((0, 0, 1000, 1000))
    found = [Found((100, 100, 200, 200), 0.5, 0), Found((102, 101, 201, 199), 0.9, 0),
             Found((100, 100, 200, 200), 0.4, 1),  # another phrase on the same spot: both kept
             Found((500, 500, 600, 600), 0.3, 0)]
    merged = merge(Candidates.of(found), [page])
    assert [(f.score, f.phrase) for f in merged] == [(0.9, 0), (0.4, 1), (0.3, 0)]


def test_a_tiles_partial_view_inside_the_whole_pages_box_is_dropped() -> None:
    page, tile = WholePage((0, 0, 3000, 3000)), View((0, 0, 800, 800))
    found = [Found((100, 100, 700, 700), 0.8, 0), Found((300, 300, 500, 500), 0.6, 0)]
    assert [f.box for f in merge(Candidates.of(found), [page, tile])] == [(100, 100, 700, 700)]


@pytest.mark.parametrize(("a", "b", "expected"), [((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
                                                  ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
                                                  ((0, 0, 10, 10), (20, 20, 30, 30), 0.0)])
def test_iou(a, b, expected) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_a_cut_box_scoring_higher_than_the_whole_view_still_becomes_the_whole_object() -> None:
    page = WholePage((0, 0, 2000, 1000))
    left, right = View((0, 0, 1000, 1000)), View((800, 0, 1800, 1000))
    # Left tile: cut at x=1000 (higher score); right tile: the whole object, IoU with the cut part 0.5.
    found = [Found((800, 400, 1000, 600), 0.9, 0), Found((800, 400, 1200, 600), 0.6, 0)]
    assert [f.box for f in merge(Candidates.of(found), [page, left, right])] == [(800, 400, 1200, 600)]


def test_thousands_of_loose_boxes_merge_quickly() -> None:
    import random
    import time

    rng = random.Random(1)
    views = plan_views(2577, 3633, 800, Tiling.ON)
    found = []
    for _ in range(20_000):
        x, y = rng.uniform(0, 2400), rng.uniform(0, 3400)
        found.append(Found((x, y, x + rng.uniform(20, 170), y + rng.uniform(20, 220)), rng.random(), rng.randrange(3)))
    started = time.perf_counter()
    merged = merge(Candidates.of(found), views)
    assert time.perf_counter() - started < 20 and 0 < len(merged) < len(found)
