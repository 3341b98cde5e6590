"""A progress bar on standard error, drawn only when it is a terminal."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from engine.jobs import JobProgress
from engine.paths import displayable


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, progress: JobProgress) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and progress.done < progress.total:
            return
        self._last_draw = now
        columns = shutil.get_terminal_size((80, 20)).columns
        width = 24
        filled = int(width * progress.fraction)
        text = (f"\r{self._label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{progress.done}/{progress.total} {displayable(progress.message)}")
        self._stream.write(text[: columns - 1].ljust(columns - 1))
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r" + " " * (shutil.get_terminal_size((80, 20)).columns - 1) + "\r")
            self._stream.flush()


@contextmanager
def progress_bar(label: str) -> Iterator[ProgressBar]:
    """A bar that is always cleared, whatever the job does."""
    bar = ProgressBar(label)
    try:
        yield bar
    finally:
        bar.close()
