"""Tiles only over the page's content: where the marks are, not the scanner's bed or blank paper."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.detection.content import MARGIN, SIDE, content_box
from engine.detection.tiling import TILE_BUDGET, Candidates, Tiling, merge, plan_views
from tests.test_detection_tiling import _seen_by

WIDTH, HEIGHT = 2000, 3000
FACTOR = -(-HEIGHT // SIDE)  # the shrinking content_box does: its box is this coarse


def _paper(rng: np.random.Generator) -> np.ndarray:
    """Blank paper with scanner noise and dust (specks of 2 px)."""
    page = np.clip(rng.normal(232, 3, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    for x, y in rng.integers(50, 1900, (40, 2)):
        page[y:y + 2, x:x + 2] = 90
    return page


def test_blank_paper_has_no_content_and_a_stamp_is_boxed_where_it_is() -> None:
    rng = np.random.default_rng(0)
    page = _paper(rng)
    assert content_box(Image.fromarray(page)) is None
    page[1500:1560, 1200:1260] = (150, 30, 40)  # a red stamp of 60 px
    x0, y0, x1, y1 = content_box(Image.fromarray(page))
    reach = (MARGIN + 1) * FACTOR
    assert 1200 - reach <= x0 <= 1200 and 1500 - reach <= y0 <= 1500
    assert 1260 <= x1 <= 1260 + reach and 1560 <= y1 <= 1560 + reach


def test_a_leaf_on_the_scanners_bed_is_the_content_and_a_painting_is_all_content() -> None:
    rng = np.random.default_rng(1)
    scan = np.full((HEIGHT, WIDTH, 3), 18, np.uint8)  # the black bed
    scan[120:2880, 160:1840] = _paper(rng)[120:2880, 160:1840]  # the leaf
    for top in range(400, 1400, 60):
        scan[top:top + 20, 300:1700:7] = 40  # lines of print
    x0, y0, x1, y1 = content_box(Image.fromarray(scan))
    assert abs(x0 - 160) <= 40 and abs(y0 - 120) <= 40 and abs(x1 - 1840) <= 40 and abs(y1 - 2880) <= 40
    painting = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    assert content_box(Image.fromarray(painting)) == (0.0, 0.0, WIDTH, HEIGHT)


def test_views_over_the_content_cover_it_at_a_larger_scale_and_find_the_same_boxes() -> None:
    """A leaf with wide margins of bed: views over the leaf alone see it closer than views over the whole
    scan, within the same budget, and a constructed detector's boxes are the same either way."""
    width, height, content = 2577, 3633, (300.0, 250.0, 2300.0, 3350.0)
    everywhere = plan_views(width, height, 800, Tiling.ON, 1333)
    over_content = plan_views(width, height, 800, Tiling.ON, 1333, content)
    assert over_content[0] == everywhere[0] and over_content[0].is_whole_page

    def scale(view) -> float:  # noqa: ANN001
        x0, y0, x1, y1 = view.box
        return min(800 / min(x1 - x0, y1 - y0), 1333 / max(x1 - x0, y1 - y0))

    tiles = over_content[1:]
    assert min(scale(v) for v in tiles) > max(scale(v) for v in everywhere[1:])  # closer
    assert all(0 <= v.box[0] and 0 <= v.box[1] and v.box[2] <= width and v.box[3] <= height for v in tiles)
    assert min(v.box[0] for v in tiles) <= content[0] and max(v.box[2] for v in tiles) >= content[2]  # covered
    assert min(v.box[1] for v in tiles) <= content[1] and max(v.box[3] for v in tiles) >= content[3]
    whole = scale(everywhere[0])
    pixels = sum((v.box[2] - v.box[0]) * (v.box[3] - v.box[1]) * scale(v) ** 2 for v in tiles)
    assert pixels <= TILE_BUDGET * width * height * whole * whole * 1.01
    objects = [(320.0, 270.0, 385.0, 335.0), (2200.0, 3250.0, 2290.0, 3340.0),  # stamps in the leaf's corners
               (1100.0, 1700.0, 1400.0, 1900.0), (500.0, 800.0, 2100.0, 1500.0)]  # an initial, a woodcut
    for views in (everywhere, over_content):
        merged = merge(Candidates.of(_seen_by(views, objects, smallest=24)), views)
        assert sorted(f.box for f in merged) == sorted(objects)
    # What the closer views gain: a mark 58 px across (18 px whole, 22.6 in the views everywhere, 26.3 here).
    small = [(1000.0, 2000.0, 1058.0, 2058.0)]
    assert merge(Candidates.of(_seen_by(everywhere, small, smallest=25)), everywhere) == []
    assert [f.box for f in merge(Candidates.of(_seen_by(over_content, small, smallest=25)), over_content)] == small


def test_content_smaller_than_a_view_gets_one_view_at_the_pages_own_scale_and_blank_pages_none() -> None:
    views = plan_views(2577, 3633, 800, Tiling.ON, 1333, (1000.0, 3500.0, 1200.0, 3600.0))  # a stamp at the foot
    assert len(views) == 2
    x0, y0, x1, y1 = views[1].box
    assert x0 <= 1000 and y0 <= 3500 and x1 >= 1200 and y1 >= 3600 and y1 <= 3633  # kept on the page
    assert min(800 / min(x1 - x0, y1 - y0), 1333 / max(x1 - x0, y1 - y0)) <= 1.0 + 1e-9  # never enlarged
    assert plan_views(2577, 3633, 800, Tiling.ON, 1333, (5.0, 5.0, 5.0, 9.0)) == views[:1]  # no area: whole only
