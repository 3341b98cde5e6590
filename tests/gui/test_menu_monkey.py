"""Every menu and palette action survives every state: with the demo open and no model installed, and with no
project at all, each enabled action is triggered (modal dialogs dismissed by a timer). Nothing may raise, hang,
open more than one window, or leave the window unusable (issue 27)."""

from __future__ import annotations

import faulthandler
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QWidget

# Actions that end the window itself, or the project mid-round (the second round covers no project).
LEAVES = {"quit", "close"}


class Dismisser:
    """Closes every window that appears besides the main one, and remembers them, per action."""

    def __init__(self, window: QWidget) -> None:
        self.window = window
        self.opened: dict[int, str] = {}
        self.timer = QTimer()
        self.timer.setInterval(30)
        self.timer.timeout.connect(self.sweep)
        self.timer.start()

    def sweep(self) -> None:
        for widget in QApplication.topLevelWidgets():
            if widget is self.window or not widget.isVisible() or widget.windowType().name == "Popup":
                continue
            if widget.inherits("QMenu") or widget.inherits("QToolTip") or type(widget).__name__ == "QTipLabel":
                continue
            self.opened.setdefault(id(widget), widget.windowTitle() or type(widget).__name__)
            if isinstance(widget, QDialog):
                widget.reject()
            widget.close()


def _round(qtbot, window, dismisser: Dismisser) -> list[str]:
    tried = []
    for name, action in sorted(window.actions_by_name.items()):
        if name in LEAVES or not action.isEnabled() or not action.isVisible():
            continue
        dismisser.opened.clear()
        action.trigger()  # a modal dialog is dismissed from inside its own event loop, by the timer
        QApplication.processEvents()  # what the action posted for later (a job started on the next turn)
        assert window.jobs.wait(15_000), f"{name}: a job still runs after 15 s"
        qtbot.wait(15)  # what opens a moment later (a hint after a check, a job's report, a timer of 0)
        QApplication.processEvents()
        dismisser.sweep()
        assert len(dismisser.opened) <= 1, f"{name} opened {sorted(dismisser.opened.values())}"
        assert window.isVisible() and window.isEnabled(), name
        if action.isCheckable() and action.isChecked() and not name.startswith("tool-"):
            action.trigger()  # a layer or a panel turned on: back off, as a curator would
            window.jobs.wait(15_000)
        tried.append(name)
    return tried


def test_every_action_survives_the_demo_without_models_and_no_project(qtbot, window) -> None:
    """Seconds: every action of the app, twice, each given time to open what it opens."""
    faulthandler.dump_traceback_later(240, exit=True)  # a hang is a failure with a traceback, not a stuck run
    dismisser = Dismisser(window)
    try:
        window.open_demo()
        qtbot.waitUntil(lambda: window.project is not None, timeout=60_000)
        with_demo = _round(qtbot, window, dismisser)
        window.actions_by_name["close"].trigger()
        qtbot.waitUntil(lambda: window.project is None, timeout=10_000)
        without = _round(qtbot, window, dismisser)
    finally:
        dismisser.timer.stop()
        faulthandler.cancel_dump_traceback_later()
    assert len(with_demo) >= 30 and len(without) >= 20, (len(with_demo), len(without))
    assert {"export-coco", "import-coco", "attention-layer"} <= set(with_demo)


def test_new_project_wants_an_empty_folder_and_starts_in_the_curators_folders(qtbot, window, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """Issue 27, 4: a folder of unrelated files is refused, in the app and on the command line, and the folder
    dialogs never open in the program's own folder."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from cli_runner import run_cli

    busy = tmp_path / "letters"
    busy.mkdir()
    (busy / "letter.txt").write_text("Dear …")
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda parent, title, start="", *rest: asked.append(start) or str(busy))
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("Letters", True))
    window.actions_by_name["new"].trigger()
    assert window.project is None
    said = [n.label.text() for n in window.notifications.notifications()]
    assert any("is not empty" in text and "letter.txt" in text for text in said)
    assert not (busy / "project.sqlite").exists()
    assert asked and Path(asked[0]).is_dir() and Path(asked[0]) != Path.cwd()
    run = run_cli("new", str(busy))
    assert run.returncode == 1 and "is not empty" in run.stderr
    fresh = run_cli("new", str(tmp_path / "fresh"))
    assert fresh.returncode == 0 and (tmp_path / "fresh" / "project.sqlite").is_file()
