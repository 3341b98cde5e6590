"""What runs inside a cluster's worker: one model, loaded once, applied to batches of pages (no Ray imports here:
:mod:`engine.batch.ray_cluster` wraps it as Ray Data's callable class)."""

from __future__ import annotations

import os
import pickle
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engine
from engine.batch.task import PageTicket, PageWork, WorkerResult
from engine.batch.tasks.reading import sees_the_scan
from engine.errors import JobCancelled
from engine.jobs import CancelToken

CANCELLED = "cancelled"
PRECISION_ENVIRONMENT = ("MARGINALIA_PRECISION", "MARGINALIA_CPU_BF16")


class PolledCancel(CancelToken):
    """A cancel token whose flag lives elsewhere (the driver's signal actor), asked at most every half second:
    the model code checks it between blocks and windows, so a cancelled page stops within a second."""

    def __init__(self, ask: Callable[[], bool], every_s: float = 0.5) -> None:
        super().__init__()
        self._ask, self._every, self._asked_at = ask, every_s, 0.0

    @property
    def cancelled(self) -> bool:
        now = time.monotonic()
        if not super().cancelled and now - self._asked_at >= self._every:
            self._asked_at = now
            if self._ask():
                self.cancel()
        return super().cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled()


class PageWorker:
    """One worker: the model of ``work`` loaded from the models folder it sees. What cannot run here (another
    Marginalia, other weights, no such model) is said once per page as a fatal result: the driver stops the run."""

    def __init__(self, work: PageWork, models_folder: str, driver_version: str, cancelled: Callable[[], bool],
                 precision: dict[str, str] | None = None) -> None:
        from engine.models import precision as precisions
        from engine.models.runtime import ModelManager
        from engine.models.service import ModelService, checkpoint_of
        from engine.models.store import ModelStore

        self.work, self.cancelled = work, cancelled
        self.fatal, self.where = "", f"{socket.gethostname()}/{os.getpid()}"
        try:
            if engine.__version__ != driver_version:
                raise RuntimeError(f"it runs Marginalia {engine.__version__}, this computer {driver_version}: "
                                   "install the same version on the cluster")
            settings = precision or driver_precision()
            os.environ.update({name: value for name, value in settings.items() if name.startswith("MARGINALIA_")})
            precisions.set_policy(settings["policy"])
            self.service = ModelService(ModelStore(Path(models_folder)), ModelManager())
            found = checkpoint_of(self.service, work.model_id)
            if found != work.checkpoint:
                raise RuntimeError(f"its {work.model_id} in {models_folder} has other weights than this computer's")
            self.service.run(work.model_id, lambda network: None)  # loaded once, here, before the first page
            self.where = f"{self.where} {self.service.device_of(work.model_id)}"
        except Exception as error:  # noqa: BLE001 - said to the driver, which stops the run with it
            self.fatal = f"the worker on {self.where} cannot run {work.model_id}: {error}"

    def run(self, tickets: list[PageTicket]) -> list[WorkerResult]:
        if self.fatal:
            return [WorkerResult(t.row.id, error=self.fatal, worker=self.where, fatal=True) for t in tickets]
        cancel = PolledCancel(self.cancelled)
        results, ready, inputs = [], [], []
        for ticket in tickets:
            if ticket.prepared is not None:
                ready.append(ticket)
                inputs.append(ticket.prepared)
            elif not sees_the_scan(ticket.row):
                results.append(WorkerResult(ticket.row.id, unseen=True, worker=self.where))
            else:
                try:
                    inputs.append(self.work.prepare(ticket))
                    ready.append(ticket)
                except Exception as error:  # noqa: BLE001 - one unreadable page must not stop the run
                    results.append(WorkerResult(ticket.row.id, error=_reason(error), worker=self.where))
        return results + self._compute(ready, inputs, cancel)

    def _compute(self, tickets: list[PageTicket], inputs: list[Any], cancel: PolledCancel) -> list[WorkerResult]:
        if not tickets:
            return []
        started = time.perf_counter()
        try:
            outputs = self.work.compute(self.service, tickets, inputs, cancel)
        except JobCancelled:
            return [WorkerResult(t.row.id, error=CANCELLED, worker=self.where) for t in tickets]
        except Exception as error:  # noqa: BLE001 - find the page that fails; the others go on
            if len(tickets) == 1:
                return [WorkerResult(tickets[0].row.id, error=_reason(error), worker=self.where)]
            return [result for ticket, page in zip(tickets, inputs, strict=True)
                    for result in self._compute([ticket], [page], cancel)]
        seconds = (time.perf_counter() - started) / len(tickets)
        return [WorkerResult(t.row.id, result=output, worker=self.where, seconds=seconds)
                for t, output in zip(tickets, outputs, strict=True)]


def driver_precision() -> dict[str, str]:
    """This computer's precision setting (the app's policy and the environment's overrides), for its workers:
    the curator's choice holds on the cluster too, and the same processor gives the same numbers."""
    from engine.models.precision import policy

    return {"policy": policy(), **{name: os.environ[name] for name in PRECISION_ENVIRONMENT if name in os.environ}}


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def pack(value: Any) -> bytes:
    """Between the driver and its own workers only (what Ray itself does with every object it moves)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 - written by this run's own workers (see pack)

