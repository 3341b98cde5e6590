"""Start the desktop app: ``python main.py gui [PROJECT] [--screenshot FILE]``."""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from PySide6.QtCore import QMessageLogContext, QtMsgType, QTimer, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine.paths import ASSETS_DIR, log_file
from engine.version import build_info
from gui.crash import CrashReporter
from gui.dialogs import ask_curator_name
from gui.main_window import MainWindow
from gui.settings import AppSettings

SCREENSHOT_TIMEOUT_MS = 30_000


def _setup_logging() -> None:
    path = log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)


_QUIET_QT_MESSAGES = ("does not support propagateSizeHints",)  # offscreen rendering chatter


def _qt_messages(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if any(noise in message for noise in _QUIET_QT_MESSAGES):
        return
    logging.getLogger("qt").log(logging.WARNING if kind != QtMsgType.QtDebugMsg else logging.DEBUG, message)
    if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
        print(f"Qt: {message}", file=sys.stderr)


def run_app(project: Path | None = None, *, screenshot: Path | None = None,
            report_visible: bool = False) -> int:
    """Open the main window; returns the process exit status."""
    _setup_logging()
    qInstallMessageHandler(_qt_messages)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Marginalia")
    app.setOrganizationName("Marginalia")
    app.setApplicationVersion(build_info().version)
    app.setDesktopFileName("org.marginalia.Marginalia")  # the menu entry and icon on Wayland and X11
    app.setWindowIcon(QIcon(str(ASSETS_DIR / "marginalia.svg")))
    crashes = CrashReporter(log_file())
    crashes.install()
    interactive = screenshot is None and not report_visible
    # A screenshot or a timed start works on a copy of the settings: the window it opens and closes
    # must not change the curator's layout, recent projects or last page.
    settings = AppSettings() if interactive else AppSettings.scratch_copy()
    curator = settings.curator or os.environ.get("MARGINALIA_CURATOR", "").strip()
    if not curator and interactive:
        curator = ask_curator_name(None) or ""
        if curator:
            settings.curator = curator
    window = MainWindow(settings, curator or "Unnamed curator")
    window.confirm_quit = interactive
    window.show()
    if report_visible:
        # Measured by bench/startup.py: the moment the window has been shown and painted.
        QTimer.singleShot(0, lambda: (print("window-visible", flush=True), window.close()))
        return app.exec()
    _open_initial_project(window, settings, project)
    if screenshot is not None:
        _take_screenshot_when_ready(window, screenshot)
    status = app.exec()
    # The window is closed and the project saved. Python's last garbage collection over every Qt
    # wrapper took 1.5 s of a quit the curator had already asked for: nothing left needs collecting.
    gc.freeze()
    return status


def _open_initial_project(window: MainWindow, settings: AppSettings, project: Path | None) -> None:
    if project is not None:
        window.open_project(project)
        return
    recent = [folder for folder in settings.recent_projects() if folder.exists()]
    if recent:
        window.open_project(recent[0])
    else:
        window.open_demo()  # the first run


def _take_screenshot_when_ready(window: MainWindow, path: Path) -> None:
    taken = False

    def take() -> None:
        nonlocal taken
        if taken:
            return
        taken = True
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            print(f"marginalia: error: cannot write the screenshot {path}", file=sys.stderr)
        window.close()

    window.page_ready.connect(lambda: QTimer.singleShot(400, take))
    window.project_opened.connect(
        lambda: None if window.gallery.visible_image_ids() else QTimer.singleShot(400, take))
    QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, take)
