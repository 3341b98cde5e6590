"""Batches: every task, split between workers and the one writer, gives exactly what it gives in this process;
on a local Ray (started once for this module, on 127.0.0.1, two cores) a cancelled run keeps its finished pages,
a second run completes it with the same regions as here, a page no worker can read is reported while the run
goes on, and the command line reaches the cluster; without Ray, the command says how to get it. The pages are
small crops of shared scans and the models tiny, so a Ray run is mostly Ray's (a worker process started, the
model libraries imported: about 8 s of two cores): one runs here, and ``bench/batch.py --smoke`` another."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from engine.annotations import ANNOTATION_FIELDS
from engine.attention.run import DiscoverOptions
from engine.batch.runner import ClusterChoice, describe_progress, run_batch, run_on
from engine.batch.task import BatchReport, ClusterShape, PageTicket, WorkerResult
from engine.batch.tasks.detect import DetectTask
from engine.batch.tasks.discover import DiscoverTask
from engine.batch.tasks.index import IndexTask
from engine.batch.tasks.prepare_sam import PrepareSamTask
from engine.batch.tasks.text import TextTask
from engine.batch.workers import PageWorker, driver_precision, pack, unpack
from engine.categories import add_category
from engine.detection.detect import DetectOptions, PhrasePrompt
from engine.detection.tiling import Tiling
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.models.store import ModelStore
from engine.project import Project
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.segmenter import PageRef, Segmenter
from engine.store.schema import Annotation, Category, Vector
from engine.text.hierarchy import TextOptions

# With the benches, on one test worker: bench/batch.py starts a Ray of its own, and two on two cores would
# take turns at every step (its smoke run took 31 s beside this module instead of 10).
pytestmark = pytest.mark.xdist_group("benches")

MODELS = ("sam-vit-b", "clip-vit-b-32", "grounding-dino-tiny", "hi-sam-vit-b", "dino-vits8")
# One worker of the two cores: one model load per run (the tests beside these share the cores).
ONE_WORKER = ClusterChoice("local", cpus_per_worker=2)
# The tiny random Hi-SAM scores everything low: keep what it finds, from few points.
LOOSE_TEXT = TextOptions(window=256, line_score=-1e9, nms_score=-1e9, points=8, batch=4, stroke_threshold=-1e9,
                         min_word_area=4)


@pytest.fixture(scope="module")
def local_ray():
    """One Ray for the module (the runs find it connected and leave it open), like a cluster already running."""
    import ray

    from engine.batch.ray_cluster import start_on_loopback

    start_on_loopback(ray, num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, tiny_models, shared_data: Path):
    """A project of two small pages and a model store with the tiny models, made once; tests copy both."""
    from engine.models.catalogue import get_spec
    from tests.modelkit.tiny import tiny_spec

    root = tmp_path_factory.mktemp("batch")
    store = ModelStore(root / "models")

    def add(model_id: str) -> None:
        for required in get_spec(model_id).requires:
            if store.get(required) is None:
                add(required)
        if store.get(model_id) is None:
            store.import_files(tiny_spec(model_id), [tiny_models(model_id)])

    for model_id in MODELS:
        add(model_id)
    scans = root / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg"):
        Image.open(shared_data / "manuscripts" / name).convert("RGB").reduce(10).save(scans / f"{name}.png")
    with Project.create(root / "project") as project:
        import_scans(project, [scans])
        add_category(project, "Decorated initial")
    return root


def _copy(collection: Path, into: Path) -> tuple[Project, ModelService]:
    shutil.copytree(collection / "project", into)
    service = ModelService(ModelStore(collection / "models"), ModelManager(device=DeviceChoice("cpu")))
    return Project.open(into), service


def _tasks(project: Project) -> dict[str, object]:
    with project.unit_of_work() as session:
        initial = session.scalar(select(Category.id).where(Category.name == "Decorated initial"))
    return {
        "prepare-sam": PrepareSamTask("sam-vit-b"),
        "index": IndexTask("clip-vit-b-32"),
        "detect": DetectTask("grounding-dino-tiny", [PhrasePrompt("decorated initial", initial)],
                             DetectOptions(box_threshold=0.0, text_threshold=0.0, tiling=Tiling.OFF),
                             creator="test"),
        "text": TextTask("hi-sam-vit-b", {"strokes", "paragraphs", "lines", "words"}, LOOSE_TEXT, creator="test"),
        "discover": DiscoverTask("dino-vits8", DiscoverOptions(share=0.6), creator="test"),
    }


def _box(annotation: Annotation) -> tuple[float, float, float, float]:
    return annotation.bbox_x, annotation.bbox_y, annotation.bbox_w, annotation.bbox_h


def _results(project: Project, service: ModelService) -> dict[str, object]:
    """Everything a task leaves in a project, without ids, runs or times: what both runs must share."""
    with project.unit_of_work() as session:
        annotations = session.scalars(select(Annotation).order_by(Annotation.image_id, Annotation.id)).all()
        by_id = {a.id: a for a in annotations}
        ignored = {"id", "model_run_id", "created_at", "updated_at", "creator", "parent_id", "version",
                   "updated_by", "session_id"}
        shapes = [({name: getattr(a, name) for name in ANNOTATION_FIELDS if name not in ignored},
                   _box(by_id[a.parent_id]) if a.parent_id else None) for a in annotations]
        vectors = {(v.image_id, v.annotation_id): bytes(v.data) for v in session.scalars(select(Vector))}
    rows = list_images(project)
    embeddings = {}
    segmenter = Segmenter(service, EmbeddingCache.of_project(project.folder), "sam-vit-b")
    for row in rows:
        held = segmenter.cache.get(segmenter.key_for(PageRef.of(row)))
        if held is not None:
            embeddings[row.id] = held.features.tobytes()
    return {"annotations": shapes, "vectors": vectors, "embeddings": embeddings}


class InThisProcess:
    """Workers in this process, with all that crosses to a cluster's pickled both ways (the task's work, each
    ticket, each result): every task's split between workers and the one writer, without Ray's minutes of
    process starts. What Ray adds (actor pools, shipping bytes, cancel) is tested on a real local Ray below."""

    def shape(self) -> ClusterShape:
        return ClusterShape(cpus=2, gpus=0, nodes=1)

    def map_pages(self, work: object, tickets: list[PageTicket], *, batch_size: int, cpus_per_worker: float,
                  gpus: bool, models_folder: str, cancel: CancelToken) -> Iterator[WorkerResult]:
        worker = PageWorker(unpack(pack(work)), models_folder, engine_version(), lambda: cancel.cancelled,
                            driver_precision())
        assert not worker.fatal, worker.fatal
        try:
            for start in range(0, len(tickets), batch_size):
                for result in worker.run([unpack(pack(ticket)) for ticket in tickets[start:start + batch_size]]):
                    yield unpack(pack(result))
        finally:
            worker.service.manager.unload_all()


@pytest.mark.parametrize("task_name", ["prepare-sam", "index", "detect", "text", "discover"])
def test_each_task_split_between_workers_and_one_writer_gives_exactly_what_it_gives_here(
        collection: Path, tmp_path: Path, task_name: str) -> None:
    """Seconds: the task runs twice, here and through workers (their models loaded again)."""
    here, service_here = _copy(collection, tmp_path / "here")
    there, service_there = _copy(collection, tmp_path / "there")
    # Hi-SAM reads the smaller page only: each of its windows costs the tiny model a 1024-px encode.
    pages = [row.id for row in list_images(here)][:1 if task_name == "text" else None]
    with here, there:
        expected = run_batch(here, service_here, _tasks(here)[task_name], pages)
        shown: list[str] = []
        report = run_on(InThisProcess(), there, service_there, _tasks(there)[task_name], pages,
                        ClusterChoice("local"), progress=lambda step: shown.append(step.message))
        assert not report.failed and not report.cancelled
        assert report.done == len(pages) and sum(report.workers.values()) == len(pages)
        assert all(" cpu" in worker for worker in report.workers), report.workers
        found, wanted = _results(there, service_there), _results(here, service_here)
        assert found == wanted
        assert any(wanted.values()), "the task left something to compare"
        assert expected.summary == report.summary or task_name in {"prepare-sam", "index"}
        assert any(f"of {len(pages)} pages" in line and "pages/s" in line for line in shown), shown


def test_a_cancelled_ray_run_keeps_its_pages_a_second_run_completes_it_and_an_unreadable_page_fails_alone(
        local_ray, collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Seconds: a Ray run of the attention model (a worker started, the model loaded) cancelled after its first
    page, completed through workers here, and one run here to compare with; then ``marginalia batch`` on the
    cluster finds the pages done. (The CLIP index on Ray gives what it gives here: ``bench/batch.py --smoke``,
    which exits 1 otherwise.)"""
    import json

    from cli.app import main

    project, service = _copy(collection, tmp_path / "project")
    here, service_here = _copy(collection, tmp_path / "here")

    def discover() -> DiscoverTask:
        return DiscoverTask("dino-vits8", DiscoverOptions(share=0.6), creator="test")

    with here:
        run_batch(here, service_here, discover(), [row.id for row in list_images(here)])
        wanted = _results(here, service_here)
    with project:
        first_page = Image.open(Path(list_images(project)[0].path))
        first_page.crop((0, 0, first_page.width - 8, first_page.height)).save(tmp_path / "third.png")
        import_scans(project, [tmp_path / "third.png"])
        rows = list_images(project)
        # The third page's file changes behind the project's back (same size and time: it still looks imported);
        # the workers see other content and leave it to this computer, which refuses to read it.
        broken = Path(rows[2].path)
        data = bytearray(broken.read_bytes())
        data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
        stat = broken.stat()
        broken.write_bytes(bytes(data))
        os.utime(broken, ns=(stat.st_atime_ns, stat.st_mtime_ns))

        # One worker reads the pages one after the other, cancelled once the first is back: it stops before or
        # within the second page, or that page, finished meanwhile, is kept too.
        token = CancelToken()
        first = run_batch(project, service, discover(), [rows[0].id, rows[1].id], ONE_WORKER,
                          progress=lambda step: token.cancel() if step.done >= 1 else None, cancel=token)
        assert first.cancelled and first.done in (1, 2), first
        assert first.summary.startswith(f"Stopped: {first.done} page(s) finished and kept")
        with project.unit_of_work() as session:
            pages_with_regions = set(session.scalars(select(Annotation.image_id)))
        assert len(pages_with_regions) == first.done, "finished pages are kept whole, a cancelled one not begun"
        second = run_on(InThisProcess(), project, service, discover(), [row.id for row in rows], ONE_WORKER)
        assert second.skipped == first.done and second.done == 2 - first.done, second
        assert [(page, "no longer the file imported" in reason) for page, _, reason in second.failed] == [
            (rows[2].id, True)]
        assert _results(project, service) == wanted, "resumed, the pages hold what a run here gives"
    monkeypatch.setenv("MARGINALIA_MODELS", str(collection / "models"))
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    status = main(["batch", str(tmp_path / "project"), "discover", "--pages", f"{rows[0].id},{rows[1].id}",
                   "--model", "dino-vits8", "--cluster", "local", "--json"])
    said = json.loads(capsys.readouterr().out)
    assert status == 0 and said["cluster"] == "local", said
    assert (said["pages"], said["skipped"], said["done"], said["failed"], said["workers"]) == (2, 2, 0, [], {}), said


def test_without_ray_the_command_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, project: Project,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from cli.app import main

    monkeypatch.setitem(sys.modules, "ray", None)
    status = main(["batch", str(project.folder), "index", "--all", "--cluster", "local"])
    error = capsys.readouterr().err
    assert status == 1 and 'pip install "marginalia[cluster]"' in error
    assert "Traceback" not in error


def test_pages_of_a_batch_are_written_in_one_transaction(project: Project, tmp_path: Path) -> None:
    from engine.annotations import Geometry, create_annotation

    Image.new("RGB", (64, 48), "white").save(tmp_path / "page.png")
    import_scans(project, [tmp_path / "page.png"])
    (row,) = list_images(project)
    category = add_category(project, "Initial").id

    def add() -> None:
        create_annotation(project, image_id=row.id, category_id=category, geometry=Geometry(bbox=(1, 1, 5, 5)),
                          creator="test")

    with pytest.raises(RuntimeError), project.one_transaction():
        add()
        add()
        raise RuntimeError("the batch fails after two pages")
    with project.one_transaction():
        add()
        add()
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Annotation)).all()) == 2


def test_progress_says_pages_rate_time_left_workers_and_failures() -> None:
    report = BatchReport("text", pages=100, done=10, skipped=20, failed=[(3, "p3", "cannot be decoded")],
                         workers={"gpu1/11 cuda": 6, "gpu1/12 cuda": 2, "gpu2/7 cuda": 2})
    import time

    line = describe_progress(report, time.perf_counter() - 11.0)
    assert line.startswith("30 of 100 pages · 1.00 pages/s · about ")
    assert "3 worker(s) (cuda ×3 on 2 hosts)" in line and line.endswith("1 failed")


def test_a_worker_with_other_weights_or_another_version_refuses_and_one_that_sees_another_file_says_so(
        collection: Path, tmp_path: Path) -> None:
    from engine.batch.tasks.discover import AttentionWork
    from engine.models.service import checkpoint_of

    service = ModelService(ModelStore(collection / "models"), ModelManager(device=DeviceChoice("cpu")))
    checkpoint = checkpoint_of(service, "dino-vits8")
    models = str(collection / "models")
    with Project.open(collection / "project") as project:
        row = list_images(project)[0]
    ticket = PageTicket(row)

    other_weights = PageWorker(AttentionWork("dino-vits8", "0" * 64, 112), models, engine_version(), lambda: False)
    (refused,) = other_weights.run([ticket])
    assert refused.fatal and "other weights" in refused.error and models in refused.error
    other_version = PageWorker(AttentionWork("dino-vits8", checkpoint, 112), models, "0.0.1", lambda: False)
    assert "install the same version" in other_version.run([ticket])[0].error

    elsewhere = PageTicket(replace(row, path=str(tmp_path / "not-here.png")))
    worker = PageWorker(AttentionWork("dino-vits8", checkpoint, 112), models, engine_version(), lambda: False)
    assert not worker.fatal, worker.fatal
    unseen, computed = worker.run([elsewhere, ticket])
    assert unseen.unseen and unseen.result is None
    assert computed.result.attention.heads.shape[0] > 0 and computed.worker.endswith(" cpu")


def engine_version() -> str:
    import engine

    return engine.__version__


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket tables")
def test_the_local_ray_listens_on_the_loopback_address_only(local_ray) -> None:
    session = local_ray._private.worker._global_node.session_name
    pids = {os.getpid()} | {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
                            and session in _cmdline(int(entry.name))}
    parents = {int(entry.name): _parent(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    grown = True
    while grown:  # the workers the raylet started
        more = {pid for pid, parent in parents.items() if parent in pids} - pids
        pids |= more
        grown = bool(more)
    sockets = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        sockets |= {link[8:-1] for link in links if link.startswith("socket:[")}
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in sockets:  # LISTEN
                listening.append(fields[1].split(":")[0])
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}  # ::ffff:127.0.0.1
    assert listening and set(listening) <= loopback, listening


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0
