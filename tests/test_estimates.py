"""How long a scope job takes here, said before it starts: this computer's record of seconds per page, by kind of
work (task and options, model, device, precision), fed by every run here; the CLI says it on standard error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from PIL import Image

from engine.batch.estimates import KEPT, PageCosts, PageTimer, WorkKind, estimate, work_kind
from engine.batch.runner import run_batch
from engine.batch.tasks.index import IndexTask
from engine.batch.tasks.text import TextTask
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken, JobProgress
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from engine.text.hierarchy import TextOptions
from tests.cli_runner import run_cli

TEXT = WorkKind("text", "hi-sam-vit-b", "cpu", "bf16", "abc")
INDEX = WorkKind("index", "clip-vit-b-32", "cpu", "fp32", "def")


def test_an_estimate_is_the_median_of_recent_pages_of_the_same_work(tmp_path: Path) -> None:
    costs = PageCosts(tmp_path / "costs.json")
    unknown = estimate(costs, TEXT, "Find Text", 20)
    assert unknown.seconds is None and not unknown.long
    assert unknown.sentence() == "Find Text on 20 pages: not yet measured on this computer (the first page will tell)"
    costs.record(TEXT, 360.0, pages=3)  # 120 s a page
    costs.record(TEXT, 60.0)  # a quick page does not move the median much
    guess = estimate(costs, TEXT, "Find Text", 20)
    assert guess.seconds == 20 * 120.0 and guess.long
    assert guess.sentence() == "Find Text on 20 pages: about 40 min here"
    other_device = WorkKind("text", "hi-sam-vit-b", "cuda", "bf16", "abc")
    assert costs.seconds_per_page(other_device) is None  # a GPU's cost is not a CPU's
    costs.record(TEXT, 10.0 * 50, pages=50)  # only the last KEPT pages count
    assert costs.seconds_per_page(TEXT) == 10.0 and len(json.loads(costs.path.read_text())[TEXT.key]) == KEPT
    assert estimate(costs, TEXT, "Find Text", 1).sentence() == "Find Text on 1 page: about 10 s here"


def test_a_damaged_or_unwritable_record_only_loses_the_estimate(tmp_path: Path) -> None:
    damaged = tmp_path / "costs.json"
    damaged.write_text("{not json")
    costs = PageCosts(damaged)
    assert costs.seconds_per_page(TEXT) is None
    costs.record(TEXT, 30.0)
    assert costs.seconds_per_page(TEXT) == 30.0
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    PageCosts(blocked / "costs.json").record(TEXT, 30.0)  # its folder cannot be made: no error, no estimate
    assert PageCosts(blocked / "costs.json").seconds_per_page(TEXT) is None


def test_pages_are_timed_as_they_are_read_and_a_job_that_says_nothing_is_timed_at_its_end(tmp_path: Path) -> None:
    costs = PageCosts(tmp_path / "costs.json")
    seen: list[JobProgress] = []
    timer = PageTimer(costs, TEXT, seen.append)
    for step in (JobProgress(0, 4), JobProgress(1, 4, pages_read=0), JobProgress(2, 4, pages_read=1),
                 JobProgress(3, 4, pages_read=1), JobProgress(4, 4, pages_read=3)):
        timer(step)
    assert len(seen) == 5 and seen[-1].pages_read == 3  # every step passed on unchanged
    recorded = json.loads(costs.path.read_text())[TEXT.key]
    assert len(recorded) == 3 and recorded[1] == recorded[2]  # one page, then two timed together
    timer.finish(1000.0, 3)  # pages already timed one by one: the job's total is not counted again
    assert json.loads(costs.path.read_text())[TEXT.key] == recorded
    silent = PageTimer(costs, INDEX)
    silent(JobProgress(1, 2))
    silent.finish(90.0, 3)
    assert costs.seconds_per_page(INDEX) == 30.0 and len(json.loads(costs.path.read_text())[INDEX.key]) == 3


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
    costs = PageCosts(tmp_path / "costs.json")
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
    report = run_batch(project, service, task, pages, costs=costs)
    assert report.done == 1 and report.skipped == 1
    both = json.loads(costs.path.read_text())[kind.key]
    assert len(both) == 2 and both[0] == first[0] and 0 < both[1] <= report.seconds  # the skipped page: not timed
    assert estimate(costs, kind, "Find Text", 10).seconds == pytest.approx(10 * (both[0] + both[1]) / 2)


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
        assert PageCosts().seconds_per_page(kind) is None
        steps: list[JobProgress] = []
        report = run_batch(project, service, IndexTask("clip-vit-b-32"), pages, progress=steps.append)
        assert report.done == 2
        per_page = PageCosts().seconds_per_page(kind)
        assert per_page is not None and 0 < per_page <= report.seconds
        import_scans(project, scans[2:])
    said = run_cli("batch", str(folder), "index", "--all", "--model", "clip-vit-b-32")
    assert said.returncode == 0, said.stderr
    first_line = said.stderr.splitlines()[0]
    assert first_line.startswith("Indexing on 3 pages: about ") and first_line.endswith(" here."), first_line
