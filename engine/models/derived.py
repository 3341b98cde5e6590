"""Files derived from installed weights (ONNX exports), kept beside them: complete or absent, never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

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
