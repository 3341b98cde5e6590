"""How long a scope job will take on this computer, from what the same work cost here before.

Each page a job's model finishes reading here adds its seconds to this computer's record as it finishes
(``PageTimer``; a JSON file in the user's data folder, not the project: the cost belongs to the machine), so a
cancelled or interrupted job still teaches the next estimate. The record is kept per task and the options that
change its cost (``BatchTask.cost_parameters``: not the phrases of a search), model, device and precision — the
same work on the same hardware — as the last ``KEPT`` pages, each as seconds per unit of the task's work
(``BatchTask.page_work``: one a page for a model that sees every page at one size; a window for Hi-SAM at the
page's scale, where a 2577×3633 scan is 12 and a photograph of a leaf one), so pages of other sizes than those
measured are estimated at their own cost. Pages skipped (done before) or taken from a cache are not timed.
Before a job starts, the GUI and the CLI say "Find Text on 20 pages: about 40 min here" from that record's
median, over the pages still to read (``BatchTask.to_do``); where this work was never measured here they say so
instead of guessing. While a job runs, the time left is measured from the job itself (``engine.jobs.WorkClock``).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.fileio import write_atomically
from engine.jobs import JobProgress, ProgressCallback, describe_duration
from engine.paths import user_data_dir

KEPT = 20  # pages per kind of work: recent enough to follow a changed setting, many enough for a median
LONG_S = 120.0  # an estimate above this is worth asking about before the job starts
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class WorkKind:
    """The same work on the same hardware: a task with its options, a model, a device and a precision."""

    task: str
    model_id: str
    device: str
    precision: str
    options: str = ""  # a digest of the parameters that change its cost (levels, window, tiling …; not phrases)

    @property
    def key(self) -> str:
        return "|".join((self.task, self.model_id, self.device, self.precision, self.options))


def work_kind(task: Any, service: Any) -> WorkKind:
    """The kind of ``task`` (a ``BatchTask``) as ``service`` would run it here."""
    parameters = json.dumps(task.cost_parameters(), sort_keys=True, default=str)
    return WorkKind(task.name, task.model_id, service.manager.device.device, service.precision_of(task.model_id),
                    hashlib.sha256(parameters.encode()).hexdigest()[:12])


class WorkCosts:
    """Seconds per unit of work (``BatchTask.page_work``) measured on this computer, by kind of work."""

    def __init__(self, path: Path | None = None) -> None:
        # Not "page-costs.json", the record before a unit of work replaced the page: its Find Text figures were
        # seconds per page, whatever the page's size.
        self.path = path or user_data_dir() / "work-costs.json"

    def seconds_per_unit(self, kind: WorkKind) -> float | None:
        recent = self._read().get(kind.key, [])
        return statistics.median(recent) if recent else None

    def record(self, kind: WorkKind, seconds: float, pages: int = 1, work: float | None = None) -> None:
        """``pages`` pages of ``kind``, ``work`` units of it (default: one a page), took ``seconds`` in all."""
        work = pages if work is None else work
        if pages <= 0 or seconds <= 0 or work <= 0:
            return
        with _lock:
            costs = self._read()
            costs[kind.key] = (costs.get(kind.key, []) + [seconds / work] * min(pages, KEPT))[-KEPT:]
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(self.path, json.dumps(costs, indent=1).encode(), durable=False)
            except OSError:
                pass  # a read-only data folder: estimates stay unknown, the work itself is unaffected

    def _read(self) -> dict[str, list[float]]:
        try:
            costs = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or a damaged file: measured again
        if not isinstance(costs, dict):
            return {}
        return {key: [float(v) for v in values if isinstance(v, (int, float)) and v > 0]
                for key, values in costs.items() if isinstance(values, list)}


class PageTimer:
    """A job's progress callback that times the pages its model reads (``JobProgress.pages_read``, and the work they
    were: ``work_read``, else one unit a page) and adds each to ``costs`` when it finishes, then passes the step on
    to ``progress``. A page's time runs from the previous page's end (the first: from the timer's start, so it
    includes loading the model, as a curator waits for it)."""

    def __init__(self, costs: WorkCosts, kind: WorkKind, progress: ProgressCallback | None = None) -> None:
        self.costs, self.kind, self.progress = costs, kind, progress
        self.pages = 0
        self.work = 0.0
        self.mark = time.perf_counter()

    def __call__(self, step: JobProgress) -> None:
        if step.pages_read is not None and step.pages_read > self.pages:
            now = time.perf_counter()
            pages = step.pages_read - self.pages
            work = pages if step.work_read is None else step.work_read - self.work
            self.costs.record(self.kind, now - self.mark, pages, work)
            self.pages, self.mark = step.pages_read, now
            self.work += work
        if self.progress is not None:
            self.progress(step)

    def finish(self, seconds: float, pages: int) -> None:
        """At the job's end, for work that does not say page by page what it read (one unit a page): ``pages`` took
        ``seconds``."""
        if not self.pages:
            self.costs.record(self.kind, seconds, pages)


@dataclass(frozen=True, slots=True)
class Estimate:
    what: str  # "Find Text on 20 pages"
    seconds: float | None  # None: never measured here

    @property
    def long(self) -> bool:
        return self.seconds is not None and self.seconds >= LONG_S

    @property
    def brief(self) -> str:
        """"about 40 min here", or nothing where never measured here."""
        if self.seconds is None:
            return ""
        return f"about {describe_duration(self.seconds)} here" if self.seconds else "nothing new to read"

    def sentence(self) -> str:
        return f"{self.what}: {self.brief or 'not yet measured on this computer (the first page will tell)'}"


def estimate(costs: WorkCosts, kind: WorkKind, what: str, pages: int, work: float | None = None,
             read_before: int = 0) -> Estimate:
    """How long ``pages`` pages of ``kind``, ``work`` units of it (default: one a page), take here; ``what`` names
    the job ("Find Text"); ``read_before``: pages asked for that the model read before (said, not counted)."""
    if not pages:
        return Estimate(f"{what} on {_pages(read_before)}, all read before", 0.0)
    per_unit = costs.seconds_per_unit(kind)
    return Estimate(f"{what} on {_pages(pages)}{f' ({read_before} more read before)' if read_before else ''}",
                    None if per_unit is None else per_unit * (pages if work is None else work))


def _pages(count: int) -> str:
    return f"{count} page{'s' if count != 1 else ''}"


def estimate_for(costs: WorkCosts, task: Any, service: Any, project: Any, rows: list[Any], what: str) -> Estimate:
    """How long ``task`` (a ``BatchTask``) takes here over pages ``rows`` (``ImageRow``): those it still has to
    read (``BatchTask.to_do``), each at its own work."""
    to_do = task.to_do(project, service, rows)
    return estimate(costs, work_kind(task, service), what, len(to_do), work_of(task, to_do), len(rows) - len(to_do))


def work_of(task: Any, rows: list[Any]) -> float:
    """The work ``task`` (a ``BatchTask``) has in pages ``rows`` (``ImageRow``), in its own unit."""
    return float(sum(task.page_work(row) for row in rows))
