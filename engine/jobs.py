"""Progress reporting and cancellation shared by every long-running job.

Jobs (import, export, later model runs) take an optional ``progress`` callback
and an optional :class:`CancelToken`. They never know who listens: the CLI draws
a progress bar, the GUI's worker helper forwards the calls to the UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import JobCancelled


@dataclass(frozen=True, slots=True)
class JobProgress:
    """One step of a job: ``done`` of ``total`` units, with a line of text."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[JobProgress], None]


class CancelToken:
    """A thread-safe flag a job checks between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()


def report(progress: ProgressCallback | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(JobProgress(done, total, message))


def describe_duration(seconds: float) -> str:
    """A remaining time as a curator reads it: "40 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
