"""How long a scope job takes here, said before it starts: this computer's record of seconds per page, by kind of
work (task and options, model, device, precision), fed by every run here; the CLI says it on standard error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.batch.estimates import KEPT, PageCosts, WorkKind, estimate, work_kind
from engine.batch.runner import run_batch
from engine.batch.tasks.index import IndexTask
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import JobProgress
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.project import Project
from tests.cli_runner import run_cli

TEXT = WorkKind("text", "hi-sam-vit-b", "cpu", "bf16", "abc")


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
