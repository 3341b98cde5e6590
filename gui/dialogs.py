"""Small dialogs: welcome page, shortcuts list, about box, the curator's name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.version import build_info, library_versions
from engine.paths import ASSETS_DIR, log_file


class WelcomePage(QWidget):
    """Shown when no project is open: start something or reopen a recent project."""

    open_recent = Signal(Path)

    def __init__(self, new_project: Callable[[], None], open_project: Callable[[], None],
                 open_demo: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h1>Marginalia</h1><p>Annotate and explore your scans.</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QHBoxLayout()
        for text, slot in (("New project…", new_project), ("Open project…", open_project),
                           ("Open the demo project", open_demo)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        self.recent = QListWidget()
        self.recent.itemActivated.connect(
            lambda item: self.open_recent.emit(Path(item.data(Qt.ItemDataRole.UserRole))))
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Recent projects (double-click to open):"))
        layout.addWidget(self.recent, 2)
        layout.setContentsMargins(120, 40, 120, 40)

    def set_recent(self, folders: list[Path]) -> None:
        self.recent.clear()
        for folder in folders:
            item = QListWidgetItem(f"{folder.name}    —    {folder}")
            item.setData(Qt.ItemDataRole.UserRole, str(folder))
            if not folder.exists():
                item.setText(item.text() + "  (missing)")
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.recent.addItem(item)


class ShortcutsDialog(QDialog):
    """Every action with a shortcut, read from the menus so the list is always true."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None,
                 category_names: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        names = category_names or []
        rows = []
        for action in actions:
            keys = [key.toString(QKeySequence.SequenceFormat.NativeText) for key in action.shortcuts()
                    if not _dedicated_key(key)]
            name = action.text().replace("&", "")
            if name.startswith("Category ") and name.removeprefix("Category ").isdigit():
                number = int(name.removeprefix("Category "))
                if number > len(names):
                    continue  # no such category yet
                name = f"Set category: {names[number - 1]}"
            if keys:
                rows.append((name, ", ".join(keys)))
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().hide()
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for number, (name, keys) in enumerate(rows):
            table.setItem(number, 0, QTableWidgetItem(name))
            table.setItem(number, 1, QTableWidgetItem(keys))
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        extra = QLabel("On the canvas: the wheel zooms; the middle button or Space+drag pans. Polygon: click "
                       "points, double-click or Enter to close, Backspace removes the last point. Shift+click "
                       "a point of a selected shape deletes it. SAM: click to add, right-click or Alt+click to "
                       "take away, drag for a box; Enter keeps the mask shown, Esc drops it, Tab shows another "
                       "candidate. Brush and eraser: [ and ] change the size.")
        extra.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(extra)
        self.resize(520, 560)
        self.table = table


def _dedicated_key(key: QKeySequence) -> bool:
    """A key of its own on some keyboards ("Redo", "Copy"): not a combination anyone types."""
    return key.count() == 1 and key[0].key() in _DEDICATED_KEYS


_DEDICATED_KEYS = frozenset({Qt.Key.Key_Redo, Qt.Key.Key_Undo, Qt.Key.Key_Copy, Qt.Key.Key_Cut, Qt.Key.Key_Paste,
                             Qt.Key.Key_Open, Qt.Key.Key_Save, Qt.Key.Key_Find, Qt.Key.Key_Close, Qt.Key.Key_Help,
                             Qt.Key.Key_Back, Qt.Key.Key_Forward, Qt.Key.Key_Refresh, Qt.Key.Key_ZoomIn,
                             Qt.Key.Key_ZoomOut})


def show_about(parent: QWidget) -> None:
    attribution = (ASSETS_DIR / "demo" / "ATTRIBUTION.md").read_text(encoding="utf-8") \
        if (ASSETS_DIR / "demo" / "ATTRIBUTION.md").exists() else ""
    sources = "".join(
        f"<li>{line.split('|')[1].strip().strip('`')}: {line.split('|')[3].strip()}</li>"
        for line in attribution.splitlines() if line.startswith("| `"))
    info = build_info()
    libraries = ", ".join(f"{name} {version}" for name, version in library_versions().items())
    QMessageBox.about(
        parent, "About Marginalia",
        f"<h3>Marginalia {info.version}</h3>"
        f"<p>Commit {info.commit}{' · built ' + info.built if info.built else ''}</p>"
        "<p>Annotate and explore heritage scans with vision models running on your own computer.</p>"
        f"<p><b>Model and image libraries</b>: {libraries}</p>"
        f"<p>Log: {log_file()}</p>"
        f"<p><b>Bundled sample scans</b></p><ul>{sources}</ul>"
        "<p>The printed works are public domain; digitisations and ground truth come from the "
        "OCR-D project's public test assets (Deutsches Textarchiv / Staatsbibliothek zu Berlin, "
        "CC BY-SA for the DTA ground truth).</p>")


def ask_curator_name(parent: QWidget, current: str = "") -> str | None:
    name, ok = QInputDialog.getText(
        parent, "Welcome to Marginalia — your name",
        "Marginalia keeps your name with every annotation and review you make, so that a collection's records "
        "say who did what. Your name:", text=current)
    return name.strip() if ok and name.strip() else None
