"""The one way slow work leaves the UI thread.

``JobRunner.submit`` runs a function on a worker thread (superqt's worker on
Qt's thread pool), hands it a progress callback and a cancel token, and brings
its result, its progress and any error back to the UI thread. Errors are never
swallowed: they reach ``failed`` with a message fit for the curator, and the
traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QDeadlineTimer, QObject, QThread, QThreadPool, Signal
from superqt.utils import create_worker

from engine.errors import JobCancelled, MarginaliaError
from engine.jobs import CancelToken, JobProgress, PauseGate

log = logging.getLogger(__name__)

Work = Callable[[Callable[[JobProgress], None], CancelToken], Any]


class Job(QObject):
    """One running piece of work, as the UI sees it."""

    progressed = Signal(object)  # JobProgress, delivered on the UI thread
    ended = Signal()

    def __init__(self, title: str, *, visible: bool, announce_cancel: bool = True,
                 parent: QObject | None = None, gate: PauseGate | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.visible = visible
        self.announce_cancel = announce_cancel
        self.token = CancelToken(gate)
        self.last_progress: JobProgress | None = None
        self.outcome = "running"  # then: done, failed, cancelled
        self.progressed.connect(self._remember)

    def report(self, progress: JobProgress) -> None:
        """Called on the worker thread; the signal crosses to the UI thread."""
        self.progressed.emit(progress)

    def cancel(self) -> None:
        self.token.cancel()

    def _remember(self, progress: JobProgress) -> None:
        self.last_progress = progress


def describe_error(error: BaseException) -> str:
    if isinstance(error, MarginaliaError):
        return str(error)
    if isinstance(error, MemoryError):
        return "Not enough memory for this operation. Close other programs and try again."
    return f"Unexpected error: {type(error).__name__}: {error}"


class JobRunner(QObject):
    """Runs jobs off the UI thread. Background jobs (work over many pages: an import, an export, preparing
    SAM for every page, indexing, a bulk review, a model download) run in a pool of their own, one thread
    per core; everything the curator waits on to go on (a page, its annotations, a mask) in Qt's global
    pool. On a two-core laptop two background jobs would otherwise hold every thread, and the page the
    curator opens would wait for them to end; and the threads competing for Python's lock stay few, so
    the UI thread is not starved of it."""

    job_started = Signal(object)  # Job
    job_ended = Signal(object)  # Job
    failed = Signal(str, str)  # job title, message
    cancelled = Signal(str)  # job title

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[Job, Any] = {}
        self._background = QThreadPool(self)
        self._background.setMaxThreadCount(max(2, QThread.idealThreadCount()))
        self.background_gate = PauseGate()  # background jobs wait at it while paused (on battery)

    def submit(
        self,
        title: str,
        work: Work,
        on_success: Callable[[Any], None] | None = None,
        *,
        on_failure: Callable[[str], None] | None = None,
        visible: bool = True,
        announce_cancel: bool = True,
        background: bool = False,
    ) -> Job:
        """Run ``work(progress, cancel)`` off the UI thread.

        ``on_success`` gets the result on the UI thread; invisible jobs (quick
        loads) stay out of the status bar but still report errors;
        ``announce_cancel=False`` is for loads the app itself abandons;
        ``background=True`` for work over many pages (see the class).
        """
        job = Job(title, visible=visible, announce_cancel=announce_cancel, parent=self,
                  gate=self.background_gate if background else None)
        # Handlers go in through _connect: superqt then leaves errors to us
        # instead of re-raising them in the event loop.
        worker = create_worker(work, job.report, job.token, _start_thread=False, _connect={
            "returned": lambda result: self._alive(job) and self._succeeded(job, result, on_success),
            "errored": lambda error: self._alive(job) and self._errored(job, error, on_failure),
            "finished": lambda: self._alive(job) and self._finished(job),
        })
        self._running[job] = worker
        self.job_started.emit(job)
        if background:
            self._background.start(worker)  # held in _running until it finishes
        else:
            worker.start()
        return job

    def running_jobs(self) -> list[Job]:
        return list(self._running)

    def cancel_all(self) -> None:
        for job in self._running:
            job.cancel()

    def wait(self, milliseconds: int = 30_000) -> bool:
        """Block until every job has ended (used when closing, and by tests)."""
        deadline = QDeadlineTimer(milliseconds)
        return (self._background.waitForDone(deadline)
                and QThreadPool.globalInstance().waitForDone(deadline))

    def _alive(self, job: Job) -> bool:
        """False once the window that ran the job is gone (a job may outlive a closed window by a moment):
        its result then has nowhere to go."""
        return shiboken6.isValid(self) and shiboken6.isValid(job)

    def _succeeded(self, job: Job, result: Any, on_success: Callable[[Any], None] | None) -> None:
        job.outcome = "done"
        if on_success is not None:
            try:
                on_success(result)
            except Exception as error:  # a bug in a UI callback must still be seen
                log.exception("finishing %s failed", job.title)
                self.failed.emit(job.title, describe_error(error))

    def _errored(self, job: Job, error: BaseException, on_failure: Callable[[str], None] | None) -> None:
        if isinstance(error, JobCancelled) or job.token.cancelled:
            job.outcome = "cancelled"
            if job.announce_cancel:
                self.cancelled.emit(job.title)
            return
        job.outcome = "failed"
        if not isinstance(error, MarginaliaError):
            log.error("%s failed", job.title, exc_info=(type(error), error, error.__traceback__))
        message = describe_error(error)
        if on_failure is not None:
            on_failure(message)
        self.failed.emit(job.title, message)

    def _finished(self, job: Job) -> None:
        self._running.pop(job, None)
        job.ended.emit()
        self.job_ended.emit(job)
