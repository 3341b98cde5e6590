"""Progress reporting and cancellation shared by every long-running job.

Jobs (import, export, later model runs) take an optional ``progress`` callback
and an optional :class:`CancelToken`. They never know who listens: the CLI draws
a progress bar, the GUI's worker helper forwards the calls to the UI thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from engine.errors import JobCancelled


@dataclass(frozen=True, slots=True)
class JobProgress:
    """One step of a job: ``done`` of ``total`` units, with a line of text. ``pages_read``: for work that reads
    pages with a model, how many pages it has read so far (not those skipped or taken from a cache), so a listener
    can time each page (``engine.batch.estimates.PageTimer``); ``work_read``: how much work those pages were, in the
    task's own unit (``BatchTask.page_work``: a window of Hi-SAM), where a page is not one unit."""

    done: int
    total: int
    message: str = ""
    pages_read: int | None = None
    work_read: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[JobProgress], None]


class PauseGate:
    """Background work waits here while it is paused (e.g. the laptop went on battery, and the curator asked
    for that). Waiting jobs still end within a second when cancelled."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.reason = ""

    def pause(self, reason: str) -> None:
        self.reason = reason
        self._open.clear()

    def resume(self) -> None:
        self.reason = ""
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def wait(self, token: CancelToken) -> None:
        while not self._open.wait(0.2):
            if token.cancelled:
                raise JobCancelled()


class CancelToken:
    """A thread-safe flag a job checks between units of work; with a ``gate``, also where it pauses."""

    def __init__(self, gate: PauseGate | None = None) -> None:
        self._event = threading.Event()
        self._gate = gate

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait_cancelled(self, seconds: float) -> bool:
        """Block up to ``seconds``; whether the job was cancelled meanwhile (for watchers of one long call)."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()
        if self._gate is not None and self._gate.paused:
            self._gate.wait(self)


@contextlib.contextmanager
def cancel_between(blocks: Iterable[Any], cancel: CancelToken | None) -> Iterator[None]:
    """Within this, ``cancel`` is checked before each of ``blocks`` (torch modules, e.g. an image encoder's
    transformer blocks: a second or less each on a CPU) runs, so that a model's long forward pass stops soon."""
    hooks = [block.register_forward_pre_hook(lambda _module, _inputs: cancel.raise_if_cancelled())
             for block in blocks] if cancel is not None else []
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def report(progress: ProgressCallback | None, done: int, total: int, message: str = "",
           pages_read: int | None = None) -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(JobProgress(done, total, message, pages_read))


class WorkClock:
    """How long a job has left at the pace of the work it did itself: the seconds its model spent per unit of
    work (a page; a window of a large page) in this run, times the units still to do. Work done before (pages
    skipped, results taken from a cache) shortens what is left without making the pace look faster — a resumed
    run that skips half its pages at once is not "nearly done" after its first new page."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.passed = self.measured = self.busy = 0.0
        self.mark = time.perf_counter()

    def skipped(self, work: float) -> None:
        """``work`` needed nothing from the model (done before, or cached); the time since the last step with it."""
        self.passed += work
        self.mark = time.perf_counter()

    def did(self, work: float) -> None:
        """The model did ``work`` since the last step."""
        now = time.perf_counter()
        self.busy += now - self.mark
        self.measured += work
        self.mark = now

    @property
    def done(self) -> float:
        return self.passed + self.measured

    def left(self) -> str:
        """"about 12 min left", or "measuring the time left" before the model has done any work."""
        if self.measured <= 0:
            return "measuring the time left"
        remaining = max(0.0, self.total - self.done)
        return f"about {describe_duration(self.busy / self.measured * remaining)} left"


def time_left(started: float, done: float, total: float) -> str:
    """"about 12 min left" for ``done`` of ``total`` units of a job begun at ``started`` (``time.perf_counter``), the
    rest going as fast as what is done."""
    elapsed = time.perf_counter() - started
    return f"about {describe_duration(elapsed / done * (total - done) if done > 0 else 0)} left"


def describe_duration(seconds: float) -> str:
    """A remaining time as a curator reads it: "40 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
