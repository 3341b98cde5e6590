"""What a batch task is: the pages still to do, what a worker computes per page, and how the driver stores it.

A task runs either here, through the engine's own job for it (``run_here``: exactly the in-process
behaviour), or on a cluster: workers run its :class:`PageWork` (picklable; the model loaded once per
worker) and the driver stores each result with ``store`` — the same function the job here uses for a
page, so both give the same proposals, masks, vectors and scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService
from engine.project import Project


@dataclass(frozen=True, slots=True)
class PageTicket:
    """One page as it travels to a worker: its row (path, content hash, size), what the task still asks of it,
    and, when workers cannot see the scan, the input the driver prepared from it."""

    row: ImageRow
    ask: Any = None
    prepared: Any = None


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What a worker sends back for one page: the result, or why there is none."""

    image_id: int
    result: Any = None
    error: str = ""
    unseen: bool = False  # the worker cannot see the scan (or sees another file): the driver ships it
    fatal: bool = False  # the worker cannot run at all (no such model, other weights): the run stops
    worker: str = ""  # "host cpu" / "host cuda:0": where it ran
    seconds: float = 0.0


class PageWork(Protocol):
    """What a worker does to pages; picklable. ``prepare`` may run on the driver or the worker (it reads
    the scan); ``compute`` runs where the model is, on a batch of prepared inputs."""

    model_id: str
    checkpoint: str  # the driver's weights' digest: a worker with other weights refuses to run

    def prepare(self, ticket: PageTicket) -> Any: ...

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[Any],
                cancel: CancelToken) -> list[Any]: ...


@dataclass
class BatchReport:
    """A batch run's outcome, as the CLI prints it and the GUI shows it."""

    task: str
    pages: int = 0  # asked for
    done: int = 0  # stored in this run
    skipped: int = 0  # done before (resumed runs skip them)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (page id, page name, reason)
    workers: dict[str, int] = field(default_factory=dict)  # where pages ran → how many
    seconds: float = 0.0
    store_seconds: float = 0.0  # this process's time storing results (the one writer's share of the run)
    summary: str = ""  # the task's own account (proposals, vectors …)
    cancelled: bool = False
    run_id: int | None = None


class BatchTask(Protocol):
    """One kind of batch work (``marginalia batch PROJECT TASK``), driver side."""

    name: ClassVar[str]
    verb: ClassVar[str]  # for progress: "Finding text"
    model_id: str

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        """The engine's own job for this task, in this process."""
        ...

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        """Before a cluster run (recorded as ``run_id``): the pages still to do, with what each still needs; the
        others are done before (a resumed run skips them) or done now from a cache."""
        ...

    def work(self) -> PageWork: ...

    def batch_size(self, gpu: bool) -> int: ...

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        """The pages of ``rows`` its model still has to read here: not done before, not in a cache. Changes
        nothing (the estimate before a run counts them)."""
        ...

    def page_work(self, row: ImageRow) -> float:
        """How much of this task's work a page is, in the unit its job here reports as ``JobProgress.work_read``
        (one a page where the model sees every page at one size; Hi-SAM at the page's scale: its windows), so an
        estimate counts a large scan at its own cost (``engine.batch.estimates``)."""
        ...

    def store(self, project: Project, ticket: PageTicket, result: Any) -> None:
        """Store one page's result, on the driver (inside the batch's transaction)."""
        ...

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        """After a cluster run: what follows the pages (an index saved), and ``report.summary``."""
        ...

    def parameters(self) -> dict[str, Any]:
        """For the run's record."""
        ...

    def cost_parameters(self) -> dict[str, Any]:
        """Those of its parameters that change what a page costs, the same for runs of the same work (this
        computer's record of costs is kept by them): not phrases or thresholds, which change only what is kept."""
        ...


@dataclass(frozen=True, slots=True)
class ClusterShape:
    cpus: int
    gpus: int
    nodes: int

    def describe(self) -> str:
        gpus = f", {self.gpus} GPU(s)" if self.gpus else ""
        return f"{self.nodes} node(s), {self.cpus} CPU(s){gpus}"


class Cluster(Protocol):
    """An open connection to workers (:class:`engine.batch.ray_cluster.RayCluster`)."""

    def shape(self) -> ClusterShape: ...

    def map_pages(self, work: PageWork, tickets: list[PageTicket], *, batch_size: int, cpus_per_worker: float,
                  gpus: bool, models_folder: str, cancel: CancelToken) -> Iterator[WorkerResult]:
        """Each ticket's result as workers finish them, in no fixed order; after a cancel, the results still
        arriving within a few seconds, then :class:`engine.errors.JobCancelled`."""
        ...
