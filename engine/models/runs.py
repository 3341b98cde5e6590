"""Recording every model run (model, parameters, device, timings) in the project."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.project import Project
from engine.store.schema import ModelRun
from engine.store.types import utc_now


@contextmanager
def recorded_run(project: Project, model_id: str, *, device: str, parameters: dict[str, Any],
                 model_version: str = "") -> Iterator[dict[str, float]]:
    """Time a model run and store it as a ModelRun, failed runs included (with their error).

    The caller may add its own timings (e.g. ``encode_s``) to the yielded dict.
    """
    timings: dict[str, float] = {}
    started_at = utc_now()
    started = time.perf_counter()
    error = ""
    try:
        yield timings
    except BaseException as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        timings["total_s"] = round(time.perf_counter() - started, 4)
        with project.unit_of_work() as session:
            session.add(ModelRun(model_id=model_id, model_version=model_version, parameters=parameters,
                                 device=device, timings=timings, started_at=started_at,
                                 finished_at=utc_now(), error=error))
