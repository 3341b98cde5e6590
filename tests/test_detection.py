"""Find by description, end to end with the tiny Grounding DINO on shared scans: cached raw output,
re-filtering equal to transformers' own post-processing, proposals without duplicates, resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from engine.batch.tasks.detect import DetectTask
from engine.categories import add_category
from engine.annotations import delete_annotations
from engine.detection.detect import DetectOptions, PhrasePrompt, detect
from engine.detection.raw import PageOutput, RawCache, refilter
from engine.detection.tiling import Tiling, page_views
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken, JobProgress
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus

MODEL = "grounding-dino-tiny"
LOW = DetectOptions(box_threshold=0.0, text_threshold=0.0, tiling=Tiling.OFF)  # a random model: keep all


class CountingService(ModelService):
    """The real service; counts the model runs."""

    runs = 0

    def run(self, model_id, work):  # noqa: ANN001, ANN201
        self.runs += 1
        return super().run(model_id, work)


@pytest.fixture
def setup(project: Project, model_store, shared_data: Path, tmp_path: Path):
    model_store.add_tiny(MODEL)
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "kant_aufklaerung_1784_0017.tif"):
        shutil.copy(shared_data / "manuscripts" / name, scans / name)
    import_scans(project, [scans])
    initial = add_category(project, "Decorated initial").id
    arms = add_category(project, "Coat of arms").id
    prompts = [PhrasePrompt("decorated initial", initial), PhrasePrompt("coat of arms", arms)]
    service = CountingService(model_store, ModelManager(device=DeviceChoice("cpu")))
    return project, service, [row.id for row in list_images(project)], prompts


def _proposals(project: Project) -> list[Annotation]:
    with project.unit_of_work() as session:
        return list(session.scalars(select(Annotation).order_by(Annotation.id)))


def test_boxes_are_proposed_inside_their_pages_in_their_phrases_categories(setup) -> None:
    project, service, pages, prompts = setup
    report = detect(project, service, MODEL, pages, prompts, LOW, creator="Ada")
    rows = {row.id: row for row in list_images(project)}
    found = _proposals(project)
    assert report.pages == 2 and report.model_runs == 2 and report.proposed == len(found) > 0
    for annotation in found:
        page = rows[annotation.image_id]
        assert 0 <= annotation.bbox_x and annotation.bbox_x + annotation.bbox_w <= page.width + 0.01
        assert 0 <= annotation.bbox_y and annotation.bbox_y + annotation.bbox_h <= page.height + 0.01
        assert annotation.status is AnnotationStatus.PROPOSED and annotation.source_model == MODEL
        assert annotation.model_run_id == report.run_id and 0 <= annotation.score <= 1
        assert {p.phrase: p.category_id for p in prompts}[annotation.prompt] == annotation.category_id


def test_a_second_run_reads_the_cache_and_adds_nothing_and_rejections_are_remembered(setup) -> None:
    project, service, pages, prompts = setup
    first = detect(project, service, MODEL, pages, prompts, LOW, creator="Ada")
    before = [(a.bbox_x, a.bbox_y, a.score) for a in _proposals(project)]
    with project.unit_of_work() as session:  # the curator rejects one
        rejected = session.scalars(select(Annotation).limit(1)).one()
        rejected.status = AnnotationStatus.REJECTED
    service.runs = 0
    again = detect(project, service, MODEL, pages, prompts, LOW, creator="Ada")
    assert again.model_runs == 0 and service.runs == 0  # the model was not asked again
    assert again.proposed == 0 and again.already_proposed == first.proposed
    assert [(a.bbox_x, a.bbox_y, a.score) for a in _proposals(project)] == before  # deterministic, no duplicates


def test_refiltering_the_cache_equals_transformers_post_processing(setup) -> None:
    project, service, pages, prompts = setup
    detect(project, service, MODEL, pages[:1], prompts, LOW, creator="Ada")
    (entry,) = (project.folder / "cache" / "detection").glob("*.npz")
    output = RawCache(entry.parent).get(entry.stem)
    assert output is not None and len(output.views) == 1
    page = list_images(project)[0]
    from PIL import Image

    image = Image.open(page.path).convert("RGB")
    phrases = [p.phrase for p in prompts]
    for box_threshold, text_threshold in ((0.3, 0.0), (0.45, 0.0), (0.6, 0.0), (0.45, 0.5)):
        theirs = service.run(MODEL, lambda n, b=box_threshold, t=text_threshold: n.detect(
            image, phrases, box_threshold=b, text_threshold=t))
        ours = refilter(output, box_threshold, text_threshold).found()
        if text_threshold == 0.0:  # every box names some phrase: the very same boxes and scores
            assert len(ours) == len(theirs) > 0
            pairs = zip(ours, theirs, strict=True)
        else:  # a box whose words are all below the text threshold names no phrase: left out
            assert 0 < len(ours) <= len(theirs)
            pairs = ((mine, min(theirs, key=lambda d, m=mine: abs(d.score - m.score))) for mine in ours)
        for mine, their in pairs:
            assert mine.score == pytest.approx(their.score, abs=1e-6)
            assert np.allclose(mine.box, their.box, atol=0.05)


@pytest.mark.cpu_only("a GPU reads pages four at a time: both were read before the cancel")
def test_a_cancelled_run_resumes_where_it_stopped(setup) -> None:
    project, service, pages, prompts = setup
    token = CancelToken()

    def stop_after_first(progress) -> None:  # noqa: ANN001
        token.cancel()

    with pytest.raises(JobCancelled):
        detect(project, service, MODEL, pages, prompts, LOW, creator="Ada", progress=stop_after_first, cancel=token)
    done_first = len(_proposals(project))
    assert done_first > 0 and len({a.image_id for a in _proposals(project)}) == 1
    rows = list_images(project, pages)
    task = DetectTask(MODEL, prompts, LOW, "Ada")
    assert [row.id for row in task.to_do(project, service, rows)] == [pages[1]]  # what an estimate counts
    steps: list[JobProgress] = []
    resumed = detect(project, service, MODEL, pages, prompts, LOW, creator="Ada", progress=steps.append)
    assert resumed.model_runs == 1  # only the page not done before
    views = [page_views(row.width, row.height, LOW.tiling) for row in rows]
    # The bar counts the views planned; the page done before passes at once and is not timed as read.
    assert [(step.done, step.total) for step in steps] == [(views[0], sum(views)), (sum(views), sum(views))]
    assert [step.work_read for step in steps] == [0, views[1]] and steps[0].message.endswith("measuring the time left")
    assert len({a.image_id for a in _proposals(project)}) == 2


def test_no_phrase_is_refused_with_a_reason(setup) -> None:
    project, service, pages, _ = setup
    from engine.errors import MarginaliaError

    with pytest.raises(MarginaliaError, match="at least one phrase"):
        detect(project, service, MODEL, pages, [PhrasePrompt("  ", 1)], LOW, creator="Ada")


def test_the_command_line_finds_and_reports_as_json(setup, tmp_path: Path) -> None:
    """Seconds: five detect commands run the tiny Grounding DINO (and once SAM) on shared pages."""
    import json
    import os
    import subprocess

    from tests.cli_runner import run_cli

    project, service, pages, prompts = setup
    folder = project.folder
    project.close()
    env = {**os.environ, "MARGINALIA_MODELS": str(service.store.root)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("detect", str(folder), *args, env=env)

    unknown = run("--phrase", "stamp=Stamp", "--all")
    assert unknown.returncode == 1 and "no category “Stamp”" in unknown.stderr and "--create-categories" in unknown.stderr
    found = run("--phrase", "decorated initial=Decorated initial", "--phrase", "stamp=Stamp", "--create-categories",
                "--pages", str(pages[0]), "--box-threshold", "0.0", "--text-threshold", "0.0", "--tiles", "off",
                "--model", MODEL, "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["pages"] == 1 and result["model_runs"] == 1 and result["proposed"] == len(result["proposals"]) > 0
    assert {p["phrase"] for p in result["proposals"]} <= {"decorated initial", "stamp"}
    assert {p["page"] for p in result["proposals"]} == {pages[0]}
    again = run("--phrase", "decorated initial=Decorated initial", "--phrase", "stamp=Stamp", "--pages", str(pages[0]),
                "--box-threshold", "0.0", "--text-threshold", "0.0", "--tiles", "off", "--model", MODEL, "--json")
    assert json.loads(again.stdout)["proposed"] == 0 and json.loads(again.stdout)["model_runs"] == 0
    # Said before each run: the first page's boxes were cached by the first, and timed for the estimate.
    assert found.stderr.startswith("Find by description on 1 page: "), found.stderr
    assert again.stderr.startswith("Find by description on 1 page, all read before: nothing new to read.")
    from tests.modelkit.tiny import tiny_spec, write_tiny

    service.store.import_files(tiny_spec("sam-vit-b"), [write_tiny("sam-vit-b", tmp_path / "tiny-sam")])
    masked = run("--phrase", "coat of arms=Coat of arms", "--create-categories", "--pages", str(pages[1]),
                 "--box-threshold", "0.9", "--text-threshold", "0.0", "--tiles", "off", "--model", MODEL,
                 "--sam", "sam-vit-b", "--json")
    assert masked.returncode == 0, masked.stderr
    assert any(p["mask"] for p in json.loads(masked.stdout)["proposals"])
    bad = run("--phrase", "x=Stamp", "--pages", "1,nine")
    assert bad.returncode == 1 and "page ids separated by commas" in bad.stderr


def test_a_threshold_change_refilters_the_page_from_the_cache_and_keeps_reviewed_ones(setup) -> None:
    from engine.detection.detect import apply_thresholds

    project, service, pages, prompts = setup
    low = DetectOptions(box_threshold=0.3, text_threshold=0.0, tiling=Tiling.OFF)
    assert apply_thresholds(project, service, MODEL, pages[0], prompts, low, creator="Ada") is None  # not run yet
    detect(project, service, MODEL, pages[:1], prompts, low, creator="Ada")
    scores = sorted(a.score for a in _proposals(project))
    middle = scores[len(scores) // 2]
    with project.unit_of_work() as session:  # the curator accepts the weakest
        weakest = session.scalars(select(Annotation).order_by(Annotation.score).limit(1)).one()
        weakest.status = AnnotationStatus.ACCEPTED
        weakest_id = weakest.id
    service.runs = 0
    high = DetectOptions(box_threshold=middle, text_threshold=0.0, tiling=Tiling.OFF)
    added, removed = apply_thresholds(project, service, MODEL, pages[0], prompts, high, creator="Ada")
    assert service.runs == 0 and added == 0 and removed > 0
    remaining = _proposals(project)
    assert all(a.score >= middle or a.id == weakest_id for a in remaining)  # reviewed work stays (scores rounded)

    # A threshold between a proposal's stored (rounded down) score and its raw one: the box still passes, and
    # its proposal stays as it is (it was removed, then proposed again under a new id).
    (entry,) = (project.folder / "cache" / "detection").glob("*.npz")
    raw = refilter(RawCache(entry.parent).get(entry.stem), middle, 0.0).found()
    rounded_down = [f.score for f in raw if round(f.score, 4) < f.score - 1e-7]
    assert rounded_down  # a dozen boxes' scores: about half are rounded down when stored
    between = (round(rounded_down[-1], 4) + rounded_down[-1]) / 2
    before = {a.id for a in _proposals(project)}
    edge = DetectOptions(box_threshold=between, text_threshold=0.0, tiling=Tiling.OFF)
    added, _removed = apply_thresholds(project, service, MODEL, pages[0], prompts, edge, creator="Ada")
    assert added == 0 and {a.id for a in _proposals(project)} <= before
    assert any(a.score == round(rounded_down[-1], 4) for a in _proposals(project))

    added, removed = apply_thresholds(project, service, MODEL, pages[0], prompts, low, creator="Ada")
    assert service.runs == 0 and removed == 0 and added > 0
    assert sorted(a.score for a in _proposals(project)) == pytest.approx(scores, abs=1e-4)


def test_boxes_refined_by_sam_become_masks_inside_their_boxes_and_are_not_proposed_twice(setup, model_store,
                                                                                          tmp_path: Path) -> None:
    """Seconds: the tiny Grounding DINO and the tiny SAM both read shared pages."""
    from pycocotools import mask as mask_utils

    from engine.segmentation.embeddings import EmbeddingCache
    from engine.segmentation.segmenter import Segmenter

    project, service, pages, prompts = setup
    model_store.add_tiny("sam-vit-b")
    segmenter = Segmenter(service, EmbeddingCache(tmp_path / "embeddings"), "sam-vit-b")
    strict = DetectOptions(box_threshold=0.9, text_threshold=0.0, tiling=Tiling.OFF)  # a few boxes
    report = detect(project, service, MODEL, pages[:1], prompts, strict, creator="Ada", refine=segmenter)
    found = _proposals(project)
    assert report.proposed == len(found) > 0
    output = RawCache(project.folder / "cache" / "detection")
    (entry,) = output.folder.glob("*.npz")
    from engine.detection.tiling import merge

    raw = output.get(entry.stem)
    boxes = [f.box for f in merge(refilter(raw, 0.9, 0.0), raw.views)]
    masks = [a for a in found if a.rle is not None]
    assert masks, "SAM made masks"
    for annotation in masks:
        decoded = mask_utils.decode({"size": annotation.rle["size"], "counts": annotation.rle["counts"].encode()})
        ys, xs = decoded.nonzero()
        assert any(xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
                   for x0, y0, x1, y1 in boxes)  # inside its detector box
        assert annotation.score >= 0.9  # the detector's score, not SAM's
    again = detect(project, service, MODEL, pages[:1], prompts, strict, creator="Ada", refine=segmenter)
    assert again.proposed == 0 and again.model_runs == 0


def test_detections_export_to_coco_as_masks_or_boxes_with_their_scores(setup, model_store, tmp_path: Path) -> None:
    """Seconds: the tiny Grounding DINO reads two shared pages and the tiny SAM refines one."""
    import json

    from engine.coco.exporter import export_coco
    from engine.segmentation.embeddings import EmbeddingCache
    from engine.segmentation.segmenter import Segmenter

    project, service, pages, prompts = setup
    model_store.add_tiny("sam-vit-b")
    strict = DetectOptions(box_threshold=0.9, text_threshold=0.0, tiling=Tiling.OFF)
    detect(project, service, MODEL, pages[:1], prompts, strict, creator="Ada")  # boxes
    refine = Segmenter(service, EmbeddingCache(tmp_path / "embeddings"), "sam-vit-b")
    detect(project, service, MODEL, pages[1:], prompts, strict, creator="Ada", refine=refine)  # masks
    export_coco(project, tmp_path / "out.json", include_proposals=True)
    exported = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["annotations"]
    stored = {a.id: a for a in _proposals(project)}
    assert len(exported) == len(stored) > 0
    boxes = [a for a in exported if a["attributes"].get("shape") == "box"]
    masks = [a for a in exported if isinstance(a["segmentation"], dict)]
    assert boxes and masks and len(boxes) + len(masks) == len(exported)
    assert all(a["attributes"]["model"] == MODEL and 0.9 < a["score"] <= 1 for a in exported)
    assert all(a["attributes"]["prompt"] in {"decorated initial", "coat of arms"} for a in exported)
    assert all(len(a["segmentation"]) == 1 and len(a["segmentation"][0]) == 8 for a in boxes)  # the rectangle


@pytest.mark.cpu_only("a view alone and in a batch agree to 1e-5 on the CPU's kernels, not in half precision")
def test_a_tiled_run_looks_at_the_page_and_its_tiles_and_proposes_the_merged_boxes(project: Project, model_store,
                                                                                     shared_data: Path,
                                                                                     tmp_path: Path) -> None:
    """Seconds: the tiny detector runs on the page and on each of its views, and on one view alone again."""
    from PIL import Image

    from engine.detection.tiling import merge, plan_views

    model_store.add_tiny(MODEL)
    scans = tmp_path / "scans"
    scans.mkdir()
    # The tiny model sees 128 px: a 420×300 page is more than 1.5× that, so "auto" tiles it.
    page = Image.open(shared_data / "manuscripts" / "bengel_abriss01_1751_0007.jpg").convert("RGB").resize((420, 300))
    page.save(scans / "small.png")
    import_scans(project, [scans])
    (row,) = list_images(project)
    prompts = [PhrasePrompt("decorated initial", add_category(project, "Decorated initial").id)]
    service = CountingService(model_store, ModelManager(device=DeviceChoice("cpu")))
    options = DetectOptions(box_threshold=0.3, text_threshold=0.0, tiling=Tiling.AUTO)
    report = detect(project, service, MODEL, [row.id], prompts, options, creator="Ada")
    assert report.model_runs == 1

    (entry,) = (project.folder / "cache" / "detection").glob("*.npz")
    output = RawCache(entry.parent).get(entry.stem)
    side, long_side = service.run(MODEL, lambda network: (network.input_side, network.input_long_side))
    assert output.views == plan_views(420, 300, side, Tiling.AUTO, long_side) and len(output.views) >= 3
    # Each tile's output is the model's own output on that crop of the page.
    tile = output.views[len(output.views) // 2]
    crop = page.crop(tuple(round(v) for v in tile.box))
    (direct,) = service.run(MODEL, lambda network: network.raw_outputs([crop], ["decorated initial"]))
    index = output.views.index(tile)
    assert np.allclose(direct.boxes, output.boxes[index], atol=1e-5)
    assert np.allclose(direct.scores, output.scores[index], atol=1e-5)

    merged = merge(refilter(output, 0.3, 0.0), output.views)
    stored = sorted((a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h) for a in _proposals(project))
    # Each merged box is proposed, or is (nearly) one proposed just before it (engine.detection.same_detection).
    assert len(stored) == report.proposed > 0 and report.proposed + report.already_proposed == len(merged)
    expected = np.array([(x0, y0, x1 - x0, y1 - y0) for (x0, y0, x1, y1), _s, _p in merged])
    assert all(np.abs(expected - np.array(box)).max(axis=1).min() <= 0.01 for box in stored)
    assert all(0 <= x and x + w <= 420.01 and 0 <= y and y + h <= 300.01 for x, y, w, h in stored)
    # Some kept box came from a tile: it is not one the whole page's view alone gives.
    whole_only = merge(refilter(PageOutput(output.views[:1], output.boxes[:1], output.scores[:1], output.probs[:1],
                                           output.token_phrase), 0.3, 0.0), output.views[:1])
    assert {f.box for f in merged} != {f.box for f in whole_only}


def test_pages_batched_through_the_model_together_give_what_each_gives_alone(project: Project, model_store,
                                                                             shared_data: Path, tmp_path: Path) -> None:
    from PIL import Image

    model_store.add_tiny(MODEL)
    scans = tmp_path / "book"
    scans.mkdir()
    # A book scanned alike: pages of one size share a batch. A page of another size goes alone (padding
    # would change what the model sees of it).
    for number, name in enumerate(("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg",
                                   "kant_aufklaerung_1784_0020.jp2")):
        image = Image.open(shared_data / "manuscripts" / name).convert("RGB")
        image.resize((300, 420) if number < 2 else (320, 400)).save(scans / f"{number}.png")
    import_scans(project, [scans])
    pages = [row.id for row in list_images(project)]
    prompts = [PhrasePrompt("stamp", add_category(project, "Stamp").id)]
    service = CountingService(model_store, ModelManager(device=DeviceChoice("cpu")))
    calls: list[int] = []

    def counted(network, images, phrases):  # noqa: ANN001, ANN202 - the adapter's own method, counted
        calls.append(len(images))
        return type(network).raw_outputs(network, images, phrases)

    original = service.run
    service.run = lambda model_id, work: original(model_id, lambda network: work(_Counting(network, counted)))
    report = detect(project, service, MODEL, pages, prompts, DetectOptions(0.0, 0.0, Tiling.OFF, batch=4),
                    creator="Ada")
    assert report.model_runs == 3 and sorted(calls) == [1, 2]  # two pages alike in one batch, one alone
    cache = RawCache(project.folder / "cache" / "detection")
    batched = {entry.stem: cache.get(entry.stem) for entry in cache.folder.glob("*.npz")}
    shutil.rmtree(cache.folder)
    service.run = original
    detect(project, service, MODEL, pages, prompts, DetectOptions(0.0, 0.0, Tiling.OFF, batch=1), creator="Ada")
    assert set(batched) == {entry.stem for entry in cache.folder.glob("*.npz")} and len(batched) == 3
    for key, output in batched.items():
        alone = cache.get(key)
        assert np.allclose(output.boxes[0], alone.boxes[0], atol=1e-4)
        assert np.allclose(output.probs[0], alone.probs[0], atol=1e-4)


class _Counting:
    """A network whose ``raw_outputs`` is counted; everything else is the network's own."""

    def __init__(self, network, counted) -> None:  # noqa: ANN001
        self._network, self._counted = network, counted

    def raw_outputs(self, images, phrases):  # noqa: ANN001, ANN201
        return self._counted(self._network, images, phrases)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._network, name)


def test_a_crowded_page_gets_its_best_boxes_and_the_report_says_how_many_were_left_out(setup, monkeypatch) -> None:
    """Issue 27, 12: one Find put 7,988 proposals on a page; the limit keeps the best and says so."""
    project, service, pages, prompts = setup
    everything = detect(project, service, MODEL, pages[:1], prompts, LOW, creator="Ada")
    scores = sorted((a.score for a in _proposals(project)), reverse=True)
    assert everything.proposed > 4 and everything.left_out == 0
    delete_annotations(project, [annotation.id for annotation in _proposals(project)])
    monkeypatch.setattr("engine.detection.detect.MAX_PROPOSALS_PER_PAGE", 4)
    capped = detect(project, service, MODEL, pages[:1], prompts, LOW, creator="Ada")  # from the cache
    kept = sorted((a.score for a in _proposals(project)), reverse=True)
    assert capped.proposed == 4 and capped.left_out == everything.proposed - 4 and capped.crowded_pages == 1
    assert kept == pytest.approx(scores[:4], abs=1e-4)  # the best ones
    assert "the best 4 of each were proposed" in capped.summary() and "higher box threshold" in capped.summary()
