"""Run the real app on a project and draw boxes until killed (see test_kill.py).

Prints ``saved N`` after each box has been drawn with mouse events; the
edit is in the database by then, as the app autosaves every edit.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from gui.settings import AppSettings  # noqa: E402


def main() -> None:
    project = Path(sys.argv[1])
    app = QApplication.instance() or QApplication([])
    window = MainWindow(AppSettings(), "Killed Curator")
    window.show()
    loaded = []
    window.project_opened.connect(lambda: loaded.append(True))
    window.open_project(project)
    while not loaded:
        app.processEvents()
    canvas = window.canvas
    canvas.set_tool("box")
    window.categories.set_current(window.categories.records()[0].id)
    viewport = canvas.viewport()
    for number in range(10_000):
        x, y = 20 + (number * 37) % 900, 20 + (number * 53) % 1200
        start = canvas.mapFromScene(QPointF(x, y))
        end = canvas.mapFromScene(QPointF(x + 60, y + 40))
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
        QTest.mouseMove(viewport, end)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
        print(f"saved {number + 1}", flush=True)
        app.processEvents()


if __name__ == "__main__":
    main()
