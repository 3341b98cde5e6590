"""Files derived from installed weights (ONNX exports), kept beside them: complete or absent, never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cores import usable_cores

_export_lock = threading.Lock()


def export_atomically(target: Path, marker: str, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` into a scratch folder beside ``target``, then renamed into place: the folder is complete
    or absent, never half-written (``marker``: the file whose presence says it is done)."""
    with _export_lock:
        if (target / marker).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".export-"))
        try:
            with warnings.catch_warnings():  # the tracer notes Python scalars that are constants in the models
                warnings.simplefilter("ignore")
                write(work)
            os.replace(work, target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return target


def remove_older_versions(target: Path) -> None:
    """Remove earlier versions of the export ``target`` (the ``<name>-v<N>`` folders beside it): a new version of
    an export's format leaves the old one behind, where it only takes room in the models folder."""
    stem = target.name.rsplit("-v", 1)[0]
    for older in target.parent.glob(f"{stem}-v*"):
        if older != target and older.is_dir() and older.name[len(stem) + 2:].isdigit():
            shutil.rmtree(older, ignore_errors=True)


def onnx_session(path: Path, *, threads: int | None = None, spinning: bool = True, prepacking: bool = True,
                 spin_after: bool = True, disabled: tuple[str, ...] = ()) -> Any:
    """An ONNX Runtime session on the CPU for an exported file, fully optimised.

    ``threads``: compute threads (up to 4 when not given; where torch runs beside, pass its count, so that
    the cap beside a window holds). ``spinning=False``: idle threads sleep, leaving the cores to other
    work (page decoders). ``spin_after=False``: they spin within a run, not after it (what follows a run
    gets the cores). ``prepacking=False``: opens twice as fast, for sessions that run only a few times.
    ``disabled``: graph optimisers (by ONNX Runtime's name) measured to make this graph slower.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or min(4, usable_cores())
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not spin_after:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if not prepacking:
        options.add_session_config_entry("session.disable_prepacking", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=list(disabled) or None)
