"""What the curator sees when the app meets an error nobody foresaw: a dialog naming the log, with the
details one click from the clipboard, instead of a window that vanishes or a traceback in a terminal
they never opened.

Every edit is already saved when it is made, so the dialog offers to keep working. Errors in worker
threads come here too; a crash inside native code (Qt, torch) cannot be caught, so ``faulthandler``
writes its stack to the log folder for the next bug report.
"""

from __future__ import annotations

import faulthandler
import logging
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.version import build_info

_log = logging.getLogger("marginalia.crash")
_native_crash_file: IO[str] | None = None


class CrashReporter(QObject):
    """Installed once per app run; shows one dialog at a time, from the UI thread."""

    _reported = Signal(str)

    def __init__(self, log_path: Path) -> None:
        super().__init__()
        self.log_path = log_path
        self.dialog: QMessageBox | None = None
        self.shown: list[str] = []  # the details of every report shown (tests read them)
        self._reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self, *, native_crashes: bool = True) -> None:
        """Catch Python errors on every thread; ``native_crashes``: also have crashes in native code write
        their stack beside the log (left to the test runner in tests)."""
        global _native_crash_file
        sys.excepthook = self._excepthook
        threading.excepthook = lambda args: self._excepthook(args.exc_type, args.exc_value, args.exc_traceback)
        if native_crashes and _native_crash_file is None:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                _native_crash_file = (self.log_path.parent / "native-crash.log").open("a", encoding="utf-8")
                faulthandler.enable(_native_crash_file)
            except OSError:
                pass  # nowhere to write: the dialog still works for Python errors

    def _excepthook(self, kind: type[BaseException], error: BaseException,
                    trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        details = f"{build_info().line()}\n" + "".join(traceback.format_exception(kind, error, trace))
        _log.error("Unexpected error\n%s", details)
        self._reported.emit(details)  # queued: the dialog opens on the UI thread, whichever thread failed

    def _show(self, details: str) -> None:
        self.shown.append(details)
        if self.dialog is not None:
            return  # one at a time: the first error is the one that explains the rest
        first_line = details.strip().splitlines()[-1]
        dialog = QMessageBox(QMessageBox.Icon.Critical, "Marginalia met an unexpected error",
                             f"Something went wrong that Marginalia did not expect:\n\n{first_line}\n\n"
                             "Your annotations are saved as you make them, so you can keep working; if the "
                             f"same thing happens again, please send the details.\nThey are also in the log: "
                             f"{self.log_path}", QMessageBox.StandardButton.NoButton, None)
        dialog.setDetailedText(details)
        copy = dialog.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.disconnect()  # an action button would close the dialog: this one only copies
        copy.clicked.connect(lambda: QApplication.clipboard().setText(details))
        dialog.addButton("Keep working", QMessageBox.ButtonRole.AcceptRole)
        dialog.addButton("Quit", QMessageBox.ButtonRole.DestructiveRole).clicked.connect(QApplication.quit)
        dialog.finished.connect(self._closed)
        self.dialog = dialog
        dialog.open()

    def _closed(self) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None
