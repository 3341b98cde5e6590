"""Driving a batch: here (the engine's own job), or on a cluster, with one writer — this process.

On a cluster, workers only compute; the results stream back and this process stores them in batches, each
batch one transaction (:meth:`Project.one_transaction`), also for a team project: the workers need no
database login, every write goes through the same checks and run record as here, and the writes are small
beside the model time. Pages done before are skipped (``BatchTask.start``), so an interrupted run goes on
where it stopped; a cancelled one keeps every page already stored; a page that fails is reported with its
reason and the others go on.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from engine.batch.estimates import PageTimer, WorkCosts, work_kind
from engine.batch.task import BatchReport, BatchTask, Cluster, PageTicket, WorkerResult
from engine.batch.tasks.reading import sees_the_scan
from engine.batch.workers import CANCELLED
from engine.errors import JobCancelled, MarginaliaError
from engine.inventory import readable_pages
from engine.jobs import CancelToken, JobProgress, ProgressCallback, describe_duration, time_left
from engine.models.heap import give_back_freed_memory
from engine.models.runs import recorded_run
from engine.models.service import ModelService, checkpoint_of
from engine.project import Project

WRITE_EVERY_PAGES = 32
WRITE_EVERY_S = 2.0
# Tickets per dataset: the driver never holds a 10-million-page dataset at once; each chunk restarts the pool.
CHUNK_PAGES = 20_000
SHIP_CHUNK = 8  # pages the driver decodes and sends at a time, for workers that cannot see the scans (memory)
CHANGED = "its scan is missing or is no longer the file imported (relink it, or import it again)"


@dataclass(frozen=True, slots=True)
class ClusterChoice:
    """Where a batch runs: ``address`` as :class:`engine.batch.ray_cluster.RayCluster` takes it."""

    address: str
    cpus_per_worker: float | None = None  # CPU workers: cores each (default: as many as a run here uses)
    models_folder: str | None = None  # where workers find the models (default: this computer's models folder)
    ship_pages: bool = False  # always send decoded pages (workers that see no scans at all)
    local_cpus: int | None = None  # ``local``: cores the Ray started here may use


def run_batch(project: Project, service: ModelService, task: BatchTask, image_ids: list[int],
              cluster: ClusterChoice | None = None, *, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None, costs: WorkCosts | None = None) -> BatchReport:
    """``task`` over ``image_ids``: in this process when ``cluster`` is ``None``, else on the cluster. A run here
    adds each page's seconds to ``costs`` (this computer's record by default) as the page finishes: what this
    computer takes for this work, the next estimate (engine.batch.estimates)."""
    if cluster is None:
        started = time.perf_counter()
        timer = PageTimer(costs or WorkCosts(), work_kind(task, service), _with_time_left(progress, started))
        try:
            report = task.run_here(project, service, image_ids, progress=timer, cancel=cancel)
        finally:
            give_back_freed_memory()  # what the models' tensors used goes back to the system between jobs
        report.seconds = time.perf_counter() - started
        if report.done:
            timer.finish(report.seconds, report.done)
        return report
    from engine.batch.ray_cluster import RayCluster  # noqa: PLC0415 - Ray is optional

    rows = readable_pages(project, image_ids)  # the project's own refusals come before a cluster is started
    with RayCluster(cluster.address, cpus=cluster.local_cpus) as connection:
        return _ClusterRun(project, service, task, cluster, connection, progress, cancel or CancelToken()).run(rows)


def _with_time_left(progress: ProgressCallback | None, started: float) -> ProgressCallback | None:
    """``progress`` with "about 12 min left" added, measured from this run so far, where a task's own line
    does not say it."""
    if progress is None:
        return None

    def tell(step: JobProgress) -> None:
        message = step.message
        if 0 < step.done < step.total and " left" not in message:
            message = f"{message} · {time_left(started, step.done, step.total)}"
        progress(replace(step, message=message))

    return tell


def run_on(connection: Cluster, project: Project, service: ModelService, task: BatchTask, image_ids: list[int],
           choice: ClusterChoice, *, progress: ProgressCallback | None = None,
           cancel: CancelToken | None = None) -> BatchReport:
    """``task`` over ``image_ids`` on workers already connected to (``choice`` says how to use them)."""
    rows = readable_pages(project, image_ids)
    return _ClusterRun(project, service, task, choice, connection, progress, cancel or CancelToken()).run(rows)


class _ClusterRun:
    def __init__(self, project: Project, service: ModelService, task: BatchTask, choice: ClusterChoice,
                 cluster: Cluster, progress: ProgressCallback | None, cancel: CancelToken) -> None:
        self.project, self.service, self.task, self.choice = project, service, task, choice
        self.cluster, self.progress, self.cancel = cluster, progress, cancel
        self.shape = cluster.shape()
        self.writes: list[tuple[PageTicket, Any]] = []
        self.written_at = time.perf_counter()
        self.started = 0.0

    def run(self, rows: list[Any]) -> BatchReport:
        report = self.report = BatchReport(self.task.name, pages=len(rows))
        started = time.perf_counter()
        parameters = {**self.task.parameters(), "pages": len(rows), "cluster": self.choice.address,
                      "cluster_shape": self.shape.describe()}
        with recorded_run(self.project, self.task.model_id, device=f"ray ({self.shape.describe()})",
                          parameters=parameters, model_version=checkpoint_of(self.service, self.task.model_id)[:12]
                          ) as run:
            report.run_id = run.id
            tickets = self.task.start(self.project, self.service, rows, run.id)
            report.skipped = len(rows) - len(tickets)
            self._tell(f"{len(tickets)} page(s) to do on {self.shape.describe()}; starting the workers")
            try:
                self._all(tickets)
            except (JobCancelled, KeyboardInterrupt):  # Ctrl+C while storing: what is finished is still kept
                report.cancelled = True
            finally:
                self._write()
                run.timings.update(pages=report.done, failed=len(report.failed), workers=dict(report.workers))
            if not report.cancelled:
                self.task.finish(self.project, self.service, report)
        report.seconds = time.perf_counter() - started
        if report.cancelled:
            report.summary = f"Stopped: {report.done} page(s) finished and kept"
        return report

    def _all(self, tickets: list[PageTicket]) -> None:
        work = self.task.work()
        if self.choice.ship_pages:
            unseen = tickets
        else:
            unseen = []
            for start in range(0, len(tickets), CHUNK_PAGES):
                unseen += self._map(work, tickets[start:start + CHUNK_PAGES])
        for start in range(0, len(unseen), SHIP_CHUNK):  # the driver reads what the workers cannot see
            shipped = []
            for ticket in unseen[start:start + SHIP_CHUNK]:
                self.cancel.raise_if_cancelled()
                if not sees_the_scan(ticket.row):  # a model must not read other content than was imported
                    self.report.failed.append((ticket.row.id, ticket.row.display_name, CHANGED))
                    continue
                try:
                    shipped.append(PageTicket(ticket.row, ticket.ask, work.prepare(ticket)))
                except Exception as error:  # noqa: BLE001 - one unreadable page must not stop the run
                    self.report.failed.append((ticket.row.id, ticket.row.display_name, str(error) or repr(error)))
            if self._map(work, shipped):
                raise MarginaliaError("The workers refused pages sent to them; see the log of the cluster.")

    def _map(self, work: Any, tickets: list[PageTicket]) -> list[PageTicket]:
        """Run ``tickets`` on the cluster, storing results as they come; the tickets whose scan no worker saw."""
        if not tickets:
            return []
        by_id = {ticket.row.id: ticket for ticket in tickets}
        gpus = self.shape.gpus > 0
        cpus = self.choice.cpus_per_worker or float(threads_here())
        unseen = []
        self.started = self.started or time.perf_counter()
        for result in self.cluster.map_pages(work, tickets, batch_size=self.task.batch_size(gpus),
                                             cpus_per_worker=cpus, gpus=gpus,
                                             models_folder=self.choice.models_folder or str(self.service.store.root),
                                             cancel=self.cancel):
            ticket = by_id[result.image_id]
            if result.fatal:
                self._write()
                raise MarginaliaError(f"Stopped: {result.error}. {self.report.done} page(s) finished and kept.")
            if result.unseen:
                unseen.append(ticket)
            elif result.error == CANCELLED:
                continue
            elif result.error:
                self.report.failed.append((ticket.row.id, ticket.row.display_name, result.error))
            else:
                self.writes.append((ticket, result.result))
                self._count(result)
            if len(self.writes) >= WRITE_EVERY_PAGES or time.perf_counter() - self.written_at >= WRITE_EVERY_S:
                self._write()
            else:
                self._tell()
        return unseen

    def _count(self, result: WorkerResult) -> None:
        self.report.workers[result.worker] = self.report.workers.get(result.worker, 0) + 1

    def _write(self) -> None:
        """The finished pages stored in one transaction; if that fails, page by page, so one bad page fails alone."""
        pending, self.writes = self.writes, []
        self.written_at = time.perf_counter()
        if not pending:
            return
        try:
            self._store(pending)
        finally:
            self.report.store_seconds += time.perf_counter() - self.written_at
        self._tell()

    def _store(self, pending: list[tuple[PageTicket, Any]]) -> None:
        try:
            with self.project.one_transaction():
                for ticket, result in pending:
                    self.task.store(self.project, ticket, result)
            self.report.done += len(pending)
        except MarginaliaError:
            raise  # the project itself refuses (read-only, damaged, busy): no page could be stored
        except Exception:  # noqa: BLE001 - find the page that cannot be stored
            for ticket, result in pending:
                try:
                    with self.project.one_transaction():
                        self.task.store(self.project, ticket, result)
                    self.report.done += 1
                except Exception as error:  # noqa: BLE001
                    self.report.failed.append((ticket.row.id, ticket.row.display_name,
                                               f"could not be stored: {error}"))

    def _tell(self, message: str = "") -> None:
        if self.progress is None:
            return
        report = self.report
        finished = report.done + len(self.writes) + report.skipped + len(report.failed)
        self.progress(JobProgress(finished, report.pages,
                                  message or describe_progress(report, self.started, len(self.writes))))


def threads_here() -> int:
    """The compute threads a model run in this process uses. CPU workers get as many cores by default: on a
    processor, how a model's sums are split between threads changes their last digits, and so, now and then, a
    box at a threshold; with the same thread count, a worker gives exactly the numbers a run here gives."""
    import torch

    return max(1, torch.get_num_threads())


def describe_progress(report: BatchReport, started: float, unwritten: int = 0) -> str:
    """"412 of 10000 pages · 3.1 pages/s · about 52 min left · 4 workers (cuda ×4 on 2 hosts) · 2 failed";
    ``unwritten``: pages finished and about to be stored."""
    finished = report.done + unwritten + len(report.failed)
    todo = report.pages - report.skipped
    elapsed = time.perf_counter() - started if started else 0.0
    parts = [f"{report.done + unwritten + report.skipped} of {report.pages} pages"]
    if finished and elapsed > 0:
        rate = finished / elapsed
        parts.append(f"{rate:.2f} pages/s" if rate < 10 else f"{rate:.0f} pages/s")
        parts.append(f"about {describe_duration((todo - finished) / rate)} left")
    if report.workers:
        devices = Counter(worker.split(" ", 1)[-1] for worker in report.workers)
        hosts = len({worker.split("/", 1)[0] for worker in report.workers})
        kinds = ", ".join(f"{device} ×{count}" for device, count in sorted(devices.items()))
        parts.append(f"{len(report.workers)} worker(s) ({kinds}{f' on {hosts} hosts' if hosts > 1 else ''})")
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    return " · ".join(parts)
