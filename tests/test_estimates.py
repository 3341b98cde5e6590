"""How long a scope job takes here, said before it starts: this computer's record of seconds per page, by kind of
work (task and options, model, device, precision), fed by every run here; the CLI says it on standard error."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from PIL import Image

from engine import jobs
from engine.batch import estimates
from engine.batch.estimates import (
    KEPT,
    PageTimer,
    WorkCosts,
    WorkKind,
    estimate,
    estimate_for,
    work_kind,
    work_of,
)
from engine.attention.run import DiscoverOptions
from engine.batch.runner import run_batch
from engine.batch.tasks.detect import DetectTask
from engine.batch.tasks.discover import DiscoverTask
from engine.batch.tasks.index import IndexTask
from engine.batch.tasks.text import TextTask
from engine.detection.detect import DetectOptions, PhrasePrompt
from engine.detection.tiling import Tiling
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import ImageRow, list_images
from engine.jobs import CancelToken, JobProgress, WorkClock, time_left
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from engine.text.hierarchy import TextOptions
from tests.cli_runner import run_cli

TEXT = WorkKind("text", "hi-sam-vit-b", "cpu", "bf16", "abc")
INDEX = WorkKind("index", "clip-vit-b-32", "cpu", "fp32", "def")


def _row(width: int, height: int) -> ImageRow:
    return ImageRow(id=1, path="scan.tif", page_index=0, page_count=1, width=width, height=height, format="TIFF",
                    title="", shelfmark="", date="", notes="", sha256="", accepted=0, proposed=0, rejected=0,
                    missing=False)


def test_an_estimate_is_the_median_of_recent_pages_of_the_same_work(tmp_path: Path) -> None:
    costs = WorkCosts(tmp_path / "costs.json")
    unknown = estimate(costs, TEXT, "Find Text", 20)
    assert unknown.seconds is None and not unknown.long
    assert unknown.sentence() == "Find Text on 20 pages: not yet measured on this computer (the first page will tell)"
    costs.record(TEXT, 360.0, pages=3)  # 120 s a page
    costs.record(TEXT, 60.0)  # a quick page does not move the median much
    guess = estimate(costs, TEXT, "Find Text", 20)
    assert guess.seconds == 20 * 120.0 and guess.long
    assert guess.sentence() == "Find Text on 20 pages: about 40 min here"
    other_device = WorkKind("text", "hi-sam-vit-b", "cuda", "bf16", "abc")
    assert costs.seconds_per_unit(other_device) is None  # a GPU's cost is not a CPU's
    costs.record(TEXT, 10.0 * 50, pages=50)  # only the last KEPT pages count
    assert costs.seconds_per_unit(TEXT) == 10.0 and len(json.loads(costs.path.read_text())[TEXT.key]) == KEPT
    assert estimate(costs, TEXT, "Find Text", 1).sentence() == "Find Text on 1 page: about 10 s here"


def test_pages_of_other_sizes_are_estimated_at_their_own_work(tmp_path: Path) -> None:
    """Hi-SAM at the page's scale reads a 2577×3633 scan in 12 windows and a 1000×800 leaf in one: measured on
    leaves, a book of scans is twelve times their cost, not the same."""
    task = TextTask("hi-sam-vit-b", {"lines"}, TextOptions(), "")
    scan, leaf = _row(2577, 3633), _row(1000, 800)
    assert task.page_work(scan) == 12 and task.page_work(leaf) == 1
    assert TextTask("hi-sam-vit-b", {"lines"}, TextOptions(window=None), "").page_work(scan) == 1  # seen whole
    assert IndexTask("clip-vit-b-32").page_work(scan) == 1
    costs = WorkCosts(tmp_path / "costs.json")
    for _ in range(3):
        costs.record(TEXT, 10.0, pages=1, work=task.page_work(leaf))
    assert estimate(costs, TEXT, "Find Text", 20, work_of(task, [scan] * 20)).sentence() == \
        "Find Text on 20 pages: about 40 min here"
    costs.record(TEXT, 240.0, pages=2, work=2 * task.page_work(scan))  # two scans, 120 s each: still 10 s a window
    assert costs.seconds_per_unit(TEXT) == 10.0
    assert estimate(costs, TEXT, "Find Text", 3, work_of(task, [leaf, leaf, scan])).seconds == 140.0


def test_a_damaged_or_unwritable_record_only_loses_the_estimate(tmp_path: Path) -> None:
    damaged = tmp_path / "costs.json"
    damaged.write_text("{not json")
    costs = WorkCosts(damaged)
    assert costs.seconds_per_unit(TEXT) is None
    costs.record(TEXT, 30.0)
    assert costs.seconds_per_unit(TEXT) == 30.0
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    WorkCosts(blocked / "costs.json").record(TEXT, 30.0)  # its folder cannot be made: no error, no estimate
    assert WorkCosts(blocked / "costs.json").seconds_per_unit(TEXT) is None


def test_pages_are_timed_as_they_are_read_and_a_job_that_says_nothing_is_timed_at_its_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(estimates, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    costs = WorkCosts(tmp_path / "costs.json")
    seen: list[JobProgress] = []
    timer = PageTimer(costs, TEXT, seen.append)
    for seconds, step in ((0, JobProgress(0, 4)), (5, JobProgress(1, 4, pages_read=0)),
                          (55, JobProgress(2, 4, pages_read=1, work_read=12)),  # a scan: 60 s, 12 windows
                          (3, JobProgress(3, 4, pages_read=1, work_read=12)),
                          (7, JobProgress(4, 4, pages_read=3, work_read=14))):  # two leaves of one window: 10 s
        now[0] += seconds
        timer(step)
    assert len(seen) == 5 and seen[-1].pages_read == 3  # every step passed on unchanged
    assert json.loads(costs.path.read_text())[TEXT.key] == [5.0, 5.0, 5.0]  # seconds a window, a page each
    timer.finish(1000.0, 3)  # pages already timed one by one: the job's total is not counted again
    assert json.loads(costs.path.read_text())[TEXT.key] == [5.0, 5.0, 5.0]
    silent = PageTimer(costs, INDEX)
    silent(JobProgress(1, 2))
    silent.finish(90.0, 3)
    assert costs.seconds_per_unit(INDEX) == 30.0 and len(json.loads(costs.path.read_text())[INDEX.key]) == 3


def test_the_same_work_is_recognised_whatever_is_asked_for_in_it(model_store) -> None:
    """Find by description: each search names other phrases, categories and thresholds, and the model's work on a
    page is the same; its tiling or SAM's masks change the work."""
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    coats = DetectTask("grounding-dino-tiny", [PhrasePrompt("coat of arms", 1)], DetectOptions(), "Ada")
    initials = DetectTask("grounding-dino-tiny", [PhrasePrompt("decorated initial", 2), PhrasePrompt("stamp", 3)],
                          DetectOptions(box_threshold=0.2, text_threshold=0.3), "Ben")
    assert work_kind(coats, service) == work_kind(initials, service)
    fine = DetectTask("grounding-dino-tiny", [PhrasePrompt("coat of arms", 1)], DetectOptions(tiling=Tiling.FINE), "")
    assert work_kind(fine, service) != work_kind(coats, service)
    regions = DiscoverTask("dino-vits16", DiscoverOptions(), "Ada")
    assert work_kind(regions, service) == work_kind(DiscoverTask("dino-vits16", DiscoverOptions(share=0.9), ""),
                                                    service)
    lines = TextTask("hi-sam-vit-b", {"lines"}, TextOptions(), "")
    assert work_kind(lines, service) != work_kind(TextTask("hi-sam-vit-b", {"strokes"}, TextOptions(), ""), service)


def test_the_time_left_goes_at_the_pace_of_the_work_done_in_this_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run of 10 pages, 5 done before: they pass in no time and must not make the run look half done."""
    now = [0.0]
    monkeypatch.setattr(jobs, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    clock = WorkClock(10)
    assert clock.left() == "measuring the time left"
    for _ in range(5):
        now[0] += 0.01
        clock.skipped(1)
    assert clock.left() == "measuring the time left" and clock.done == 5
    now[0] += 60.0
    clock.did(1)  # a minute a page from here on: four left
    assert clock.left() == "about 4 min left"
    assert time_left(0.0, 6, 10) == "about 40 s left"  # what a clock blind to the skipped pages said
    now[0] += 2.0
    clock.skipped(1)  # a cached page among the new ones
    assert clock.left() == "about 3 min left"
    now[0] += 120.0
    clock.did(1)  # slower now: 90 s a page on average over the two read
    assert clock.left() == "about 3 min left" and clock.done == 8
    clock.did(5)  # more than planned: nothing is left, never a negative time
    assert clock.left() == "about 0 s left"


def test_a_cancelled_job_still_teaches_the_estimate_and_pages_done_before_are_not_timed(
        project: Project, model_store, shared_data: Path, tmp_path: Path) -> None:
    """Seconds: two small pages read by the tiny Hi-SAM (one, cancelled; then the other, the first skipped)."""
    model_store.add_tiny("hi-sam-vit-b")
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg"):
        Image.open(shared_data / "manuscripts" / name).convert("RGB").reduce(10).save(scans / f"{name}.png")
    import_scans(project, [scans])
    pages = [row.id for row in list_images(project)]
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    task = TextTask("hi-sam-vit-b", {"strokes"}, TextOptions(window=256, stroke_threshold=-1e9), "Ada")
    costs = WorkCosts(tmp_path / "costs.json")
    token = CancelToken()

    def cancel_once_a_page_is_read(step: JobProgress) -> None:
        if step.pages_read:
            token.cancel()

    started = time.perf_counter()
    with pytest.raises(JobCancelled):
        run_batch(project, service, task, pages, progress=cancel_once_a_page_is_read, cancel=token, costs=costs)
    cancelled_after = time.perf_counter() - started
    kind = work_kind(task, service)
    first = json.loads(costs.path.read_text())[kind.key]
    assert len(first) == 1 and 0 < first[0] <= cancelled_after  # the page read before the cancel
    # Asked again for both pages, the estimate counts the one still to read, at its one window.
    again = estimate_for(costs, task, service, project, list_images(project), "Find Text")
    assert again.what == "Find Text on 1 page (1 more read before)" and again.seconds == pytest.approx(first[0])
    steps: list[JobProgress] = []
    report = run_batch(project, service, task, pages, progress=steps.append, costs=costs)
    assert report.done == 1 and report.skipped == 1
    both = json.loads(costs.path.read_text())[kind.key]
    assert len(both) == 2 and both[0] == first[0] and 0 < both[1] <= report.seconds  # the skipped page: not timed
    # The bar counts windows (the first page's two at 256 px, the second's one), the page done before at once;
    # the time left is the new page's own pace, not that of a run that seemed two-thirds done in no time.
    rows = list_images(project)
    assert [task.page_work(row) for row in rows] == [2, 1]
    assert [(step.done, step.total) for step in steps] == [(3, 3), (3, 3)]
    assert steps[0].message.endswith("window 1 of 1 · about 0 s left") and steps[-1].work_read == 1
    assert estimate(costs, kind, "Find Text", 2, work_of(task, rows)).seconds == \
        pytest.approx((both[0] + both[1]) / 2 * 3)
    done = estimate_for(costs, task, service, project, rows, "Find Text")
    assert done.sentence() == "Find Text on 2 pages, all read before: nothing new to read" and not done.long


def test_a_run_here_feeds_the_record_and_the_command_line_says_the_estimate_first(
        model_store, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds: the tiny CLIP indexes pages here, then from the command line."""
    monkeypatch.setenv("MARGINALIA_DATA_DIR", str(tmp_path / "this-computer"))  # a record of its own
    monkeypatch.setenv("MARGINALIA_MODELS", str(model_store.root))
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    model_store.add_tiny("clip-vit-b-32")
    scans = [shared_data / "artworks" / name for name in ("munch_the_scream_1893.jpg", "van_gogh_starry_night_1889.jpg",
                                                          "turner_the_shipwreck_1805.jpg")]
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        import_scans(project, scans[:2])
        pages = [row.id for row in list_images(project)]
        service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
        kind = work_kind(IndexTask("clip-vit-b-32"), service)
        assert WorkCosts().seconds_per_unit(kind) is None
        steps: list[JobProgress] = []
        report = run_batch(project, service, IndexTask("clip-vit-b-32"), pages, progress=steps.append)
        assert report.done == 2
        per_page = WorkCosts().seconds_per_unit(kind)
        assert per_page is not None and 0 < per_page <= report.seconds
        import_scans(project, scans[2:])
    said = run_cli("batch", str(folder), "index", "--all", "--model", "clip-vit-b-32")
    assert said.returncode == 0, said.stderr
    first_line = said.stderr.splitlines()[0]
    # Two pages were indexed here before: only the third is counted, at what those two took.
    assert first_line.startswith("Indexing on 1 page (2 more read before): about ") and \
        first_line.endswith(" here."), first_line
