"""An error nobody foresaw shows a dialog naming the log, with details to copy, instead of vanishing."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from gui.crash import CrashReporter


@pytest.fixture
def reporter(tmp_path: Path):
    saved = sys.excepthook, threading.excepthook
    crashes = CrashReporter(tmp_path / "log" / "marginalia.log")
    crashes.install(native_crashes=False)
    yield crashes
    sys.excepthook, threading.excepthook = saved
    if crashes.dialog is not None:
        crashes.dialog.close()


def _button(dialog: QMessageBox, text: str) -> QPushButton:
    return next(b for b in dialog.findChildren(QPushButton) if b.text() == text)


@pytest.mark.qt_no_exception_capture
def test_an_error_in_the_ui_shows_the_log_and_copies_details(qtbot, reporter: CrashReporter) -> None:
    def broken_slot() -> None:
        {}["page"]  # noqa: B018 - the bug

    QTimer.singleShot(0, broken_slot)
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=5000)
    dialog = reporter.dialog
    assert str(reporter.log_path) in dialog.text() and "KeyError" in dialog.text()
    assert "broken_slot" in dialog.detailedText() and "Marginalia " in dialog.detailedText()
    qtbot.mouseClick(_button(dialog, "Copy details"), Qt.MouseButton.LeftButton)
    assert "broken_slot" in QApplication.clipboard().text()
    assert dialog.isVisible()  # copying does not close it
    qtbot.mouseClick(_button(dialog, "Keep working"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reporter.dialog is None, timeout=3000)


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_worker_thread_is_shown_on_the_ui_thread_once(qtbot, reporter: CrashReporter) -> None:
    def fail() -> None:
        raise RuntimeError("the decoder died")

    workers = [threading.Thread(target=fail) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    qtbot.waitUntil(lambda: len(reporter.shown) == 2, timeout=5000)
    assert reporter.dialog is not None and "the decoder died" in reporter.dialog.text()
    assert len([w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]) == 1
