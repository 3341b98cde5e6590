"""Recording every model run (model, parameters, device, timings) in the project."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.project import Project
from engine.store.schema import ModelRun
from engine.store.types import utc_now


@dataclass
class RunRecord:
    """The run being recorded: its row id (for annotations it produces) and timings to add."""

    id: int
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def recorded_run(project: Project, model_id: str, *, device: str, parameters: dict[str, Any],
                 model_version: str = "") -> Iterator[RunRecord]:
    """Time a model run and store it as a ModelRun, failed runs included (with their error).

    The row exists from the start, so what the run produces can refer to it;
    the caller may add its own timings (e.g. ``encode_s``).
    """
    with project.unit_of_work() as session:
        row = ModelRun(model_id=model_id, model_version=model_version, parameters=parameters, device=device,
                       timings={}, started_at=utc_now())
        session.add(row)
        session.flush()
        record = RunRecord(row.id)
    started = time.perf_counter()
    error = ""
    try:
        yield record
    except BaseException as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        record.timings["total_s"] = round(time.perf_counter() - started, 4)
        with project.unit_of_work() as session:
            row = session.get_one(ModelRun, record.id)
            row.timings = dict(record.timings)
            row.finished_at = utc_now()
            row.error = error


def recent_timings(project: Project, model_id: str, device: str, key: str, *, limit: int = 5) -> list[float]:
    """``key`` from the last successful runs of a model on a device (newest first), for estimates."""
    with project.unit_of_work() as session:
        runs = session.scalars(select(ModelRun).where(ModelRun.model_id == model_id, ModelRun.device == device,
                                                      ModelRun.error == "").order_by(ModelRun.id.desc())
                               .limit(limit * 4)).all()
        values = [float(run.timings[key]) for run in runs if key in (run.timings or {})]
    return values[:limit]
