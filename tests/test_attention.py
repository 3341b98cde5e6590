"""DINO attention: maps aligned to page pixels, the mass threshold, the cache, regions from constructed maps,
discovery with the tiny DINO end to end, the DINOv2 feature picture, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from engine.attention.cache import AttentionCache
from engine.attention.discover import regions_of
from engine.attention.maps import AttentionMap, keep_mass, patch_grid
from engine.attention.run import CATEGORY, attention_for, discover
from engine.batch.estimates import WorkCosts
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from engine.store.schema import Annotation, Category
from tests.cli_runner import run_cli



class CountingService(ModelService):
    runs = 0

    def run(self, model_id, work):  # noqa: ANN001, ANN201
        self.runs += 1
        return super().run(model_id, work)


def test_a_hot_patch_lands_on_its_own_page_pixels_whatever_the_page_size() -> None:
    width, height = 333, 500  # no multiple of any patch size
    gw, gh = patch_grid(width, height, 8, 112)
    assert (gw, gh) == (75, 112)
    grid = np.zeros((1, gh, gw), np.float32)
    grid[0, 40, 30] = 1.0
    attention = AttentionMap(grid, width, height)
    drawn = attention.on_page(attention.head())
    assert drawn.shape == (height, width)
    y, x = np.unravel_index(drawn.argmax(), drawn.shape)
    assert abs(x + 0.5 - (30 + 0.5) * width / gw) <= 1.5 and abs(y + 0.5 - (40 + 0.5) * height / gh) <= 1.5


def test_the_mass_threshold_keeps_the_fewest_patches_holding_the_share() -> None:
    rng = np.random.default_rng(2)
    grid = rng.random((20, 30)) ** 4
    for share in (0.3, 0.6, 0.9):
        kept = keep_mass(grid, share)
        held = grid[kept].sum() / grid.sum()
        assert held >= share
        weakest = grid[kept].min()
        assert held - weakest / grid.sum() < share  # one patch fewer would not hold it
    assert keep_mass(np.zeros((3, 3)), 0.6).sum() == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        keep_mass(grid, 1.5)


def test_constructed_attention_gives_the_expected_regions() -> None:
    gh, gw = 10, 20
    grid = np.full((gh, gw), 0.001, np.float32)
    grid[2:4, 3:6] = 1.0  # an initial: 2×3 patches
    grid[6:9, 12:16] = 0.8  # an illustration: 3×4 patches
    grid[0, 19] = 0.9  # one stray patch: left out
    attention = AttentionMap(grid[None] / grid.sum(), 400, 200)  # each patch 20×20 page pixels
    regions = regions_of(attention, share=0.95)
    assert [r.box for r in regions] == [(240.0, 120.0, 320.0, 180.0), (60.0, 40.0, 120.0, 80.0)]
    assert regions[0].patches == 12 and regions[1].patches == 6
    assert regions[0].score == pytest.approx(12 * 0.8 / grid.sum(), rel=1e-4)
    assert regions[0].mask.box == (240, 120, 320, 180) and regions[0].mask.area == 60 * 80


@pytest.fixture
def attention_setup(project: Project, model_store, shared_data: Path, tmp_path: Path):
    model_store.add_tiny("dino-vits8")
    model_store.add_tiny("dinov2-reg-small")
    model_store.add_tiny("sam-vit-b")
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "munch_the_scream_1893.jpg"):
        folder = "artworks" if name.startswith("munch") else "manuscripts"
        Image.open(shared_data / folder / name).convert("RGB").reduce(4).save(scans / f"{name}.png")
    import_scans(project, [scans])
    service = CountingService(model_store, ModelManager(device=DeviceChoice("cpu")))
    return project, service, list_images(project)


def test_maps_are_cached_and_a_cache_hit_computes_nothing(attention_setup) -> None:
    project, service, rows = attention_setup
    first, computed = attention_for(project, service, "dino-vits8", rows[0], 56)
    assert computed and service.runs == 1
    assert first.heads.shape[1:] == patch_grid(rows[0].width, rows[0].height, 8, 56)[::-1]
    assert np.allclose(first.heads.sum(axis=(1, 2)), 1.0, atol=1e-3)
    service.runs = 0
    again, computed = attention_for(project, service, "dino-vits8", rows[0], 56)
    assert not computed and service.runs == 0
    assert np.array_equal(again.heads, first.heads)  # fresh or cached: the same values (float16 kept)
    _, computed = attention_for(project, service, "dino-vits8", rows[0], 28)  # another resolution: computed
    assert computed
    for entry in (project.folder / "cache" / "attention").glob("*.npz"):
        entry.write_bytes(b"damaged")
    _, computed = attention_for(project, service, "dino-vits8", rows[0], 56)
    assert computed  # a damaged entry is computed again, not an error


def test_the_cache_stays_within_its_budget(tmp_path: Path) -> None:
    cache = AttentionCache(tmp_path, budget_bytes=30_000)
    for index in range(10):
        cache.put(f"key{index}", AttentionMap(np.random.default_rng(index).random((4, 40, 40), np.float32), 10, 10))
    assert sum(p.stat().st_size for p in tmp_path.glob("*.npz")) <= 30_000
    assert cache.get("key9") is not None and cache.get("key0") is None


def test_dinov2_gives_a_feature_picture_in_range(attention_setup) -> None:
    project, service, rows = attention_setup
    attention, _ = attention_for(project, service, "dinov2-reg-small", rows[1], 32)
    gh, gw = attention.grid
    assert attention.pca is not None and attention.pca.shape == (gh, gw, 3)
    assert attention.pca.min() >= 0.0 and attention.pca.max() <= 1.0 and attention.pca.std() > 0.01
    plain, _ = attention_for(project, service, "dino-vits8", rows[1], 32)
    assert plain.pca is None  # DINO v1 has no registers: no feature picture


def test_discovery_proposes_regions_on_pages_and_skips_them_next_time(attention_setup) -> None:
    project, service, rows = attention_setup
    report = discover(project, service, "dino-vits8", [row.id for row in rows], creator="Ada")
    assert report.pages == 2 and report.model_runs == 2 and report.proposed > 0
    with project.unit_of_work() as session:
        found = session.scalars(select(Annotation)).all()
        names = {c.id: c.name for c in session.scalars(select(Category))}
    sizes = {row.id: (row.width, row.height) for row in rows}
    assert len(found) == report.proposed
    for annotation in found:
        width, height = sizes[annotation.image_id]
        assert names[annotation.category_id] == CATEGORY and annotation.rle is not None
        assert 0 < annotation.score <= 1 and annotation.status.value == "proposed"
        assert annotation.bbox_x >= 0 and annotation.bbox_x + annotation.bbox_w <= width + 0.5
        assert annotation.bbox_y >= 0 and annotation.bbox_y + annotation.bbox_h <= height + 0.5
    again = discover(project, service, "dino-vits8", [row.id for row in rows], creator="Ada")
    assert again.pages == 0 and again.skipped == 2 and again.proposed == 0


def test_the_command_line_writes_the_map_and_discovers(attention_setup, tmp_path: Path) -> None:
    """Seconds: three commands run the tiny DINO on two shared pages and write a map at page size."""
    project, service, rows = attention_setup
    project.close()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MARGINALIA_DEVICE": "cpu",
           "MARGINALIA_MODELS": str(service.store.root)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=env)

    out = tmp_path / "map.png"
    done = run("attention", str(project.folder), str(rows[0].id), "--out", str(out), "--overlay", "--head", "max")
    assert done.returncode == 0, done.stderr
    with Image.open(out) as picture:
        assert picture.size == (rows[0].width, rows[0].height) and picture.mode == "RGB"
    refused = run("attention", str(project.folder), str(rows[0].id), "--out", str(out), "--pca")
    assert refused.returncode == 1 and "dinov2" in refused.stderr
    found = run("discover", str(project.folder), "--all", "--json")
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["pages"] == 2 and report["proposed"] == len(report["proposals"]) > 0
    # Said first, on standard error (the JSON keeps stdout); the pages read taught this computer's record.
    assert found.stderr.startswith("Propose regions on 2 pages: "), found.stderr
    assert any(key.startswith("discover|") for key in json.loads(WorkCosts().path.read_text()))
    again = run("discover", str(project.folder), "--all", "--json")
    assert again.stderr.startswith("Propose regions on 2 pages, all read before: nothing new to read."), again.stderr


def test_discovered_regions_refined_by_sam_stay_inside_their_regions(attention_setup) -> None:
    from pycocotools import mask as mask_utils

    from engine.attention.discover import regions_of
    from engine.segmentation.embeddings import EmbeddingCache
    from engine.segmentation.segmenter import Segmenter

    project, service, rows = attention_setup
    segmenter = Segmenter(service, EmbeddingCache.of_project(project.folder), "sam-vit-b")
    report = discover(project, service, "dino-vits8", [rows[0].id], creator="Ada", refine=segmenter)
    attention, _ = attention_for(project, service, "dino-vits8", rows[0])
    boxes = [region.box for region in regions_of(attention)]
    with project.unit_of_work() as session:
        found = session.scalars(select(Annotation)).all()
    assert report.proposed == len(found) == len(boxes) > 0
    for annotation in found:
        decoded = mask_utils.decode({"size": annotation.rle["size"], "counts": annotation.rle["counts"].encode()})
        ys, xs = decoded.nonzero()
        assert any(xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
                   for x0, y0, x1, y1 in boxes)  # SAM's mask, cut to its region's box


@pytest.mark.cpu_only("compares readings to 1e-3: the CPU's float32")
def test_a_tiled_page_puts_each_tiles_reading_in_place_and_blends_the_overlaps(attention_setup) -> None:
    from engine.attention.maps import _pixels, attention_of
    from engine.text.windows import plan_windows

    project, service, rows = attention_setup
    page = Image.open(rows[0].path).convert("RGB")

    def readings(network):  # noqa: ANN001, ANN202 - the tiny DINO, on the model thread
        gw, gh = patch_grid(page.width, page.height, network.patch_size, 40)
        pixels = _pixels(network, page, gw, gh)
        tiles = plan_windows(gw, gh, 16)
        alone = [network.attention_and_tokens(pixels[:, :, t.y0 * 8:t.y1 * 8, t.x0 * 8:t.x1 * 8])[0][0].numpy()
                 for t in tiles]  # each tile read by itself
        return attention_of(network, page, 40, tile=16), attention_of(network, page, 40), tiles, alone, (gw, gh)

    tiled, whole, tiles, alone, (gw, gh) = service.run("dino-vits8", readings)
    assert len(tiles) > 4 and tiled.heads.shape == whole.heads.shape == (2, gh, gw)
    assert np.allclose(tiled.heads.sum(axis=(1, 2)), 1.0, atol=1e-4)
    coverage = np.zeros((gh, gw))
    for tile in tiles:
        coverage[tile.y0:tile.y1, tile.x0:tile.x1] += 1
    assert coverage.min() >= 1 and coverage.max() > 1  # the tiles cover the page and overlap
    # Where one tile alone covers a patch, the tiled map is that tile's own reading, up to one factor per head.
    for tile, reading in zip(tiles, alone, strict=True):
        own = coverage[tile.y0:tile.y1, tile.x0:tile.x1] == 1
        if own.sum() < 2:
            continue
        placed = tiled.heads[:, tile.y0:tile.y1, tile.x0:tile.x1][:, own]
        ratio = placed / (reading[:, own] * tile.width * tile.height)
        assert np.allclose(ratio, ratio[:, :1], rtol=1e-3)
    # Where tiles overlap, it is the mean of their readings (in the same units).
    first, second = tiles[0], tiles[1]
    y0, y1 = max(first.y0, second.y0), min(first.y1, second.y1)
    x0, x1 = max(first.x0, second.x0), min(first.x1, second.x1)
    both = coverage[y0:y1, x0:x1] == 2
    if both.any():
        a = alone[0][:, y0 - first.y0:y1 - first.y0, x0 - first.x0:x1 - first.x0] * first.width * first.height
        b = alone[1][:, y0 - second.y0:y1 - second.y0, x0 - second.x0:x1 - second.x0] * second.width * second.height
        scale = tiled.heads[:, y0:y1, x0:x1][:, both] / ((a + b) / 2)[:, both]
        assert np.allclose(scale, scale[:, :1], rtol=1e-3)
