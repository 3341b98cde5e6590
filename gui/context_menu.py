"""Right-click menus for lists and trees: built on demand, shown without blocking the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractScrollArea, QMenu

MenuEntry = tuple[str, Callable[[], object], bool] | None  # text, action, enabled; None is a separator


def show_context_menu(view: QAbstractScrollArea, position: QPoint, entries: Sequence[MenuEntry]) -> QMenu:
    """Pop up ``entries`` at ``position`` (in the view's viewport); the menu deletes itself when closed."""
    menu = QMenu(view)
    for entry in entries:
        if entry is None:
            menu.addSeparator()
            continue
        text, action, enabled = entry
        item = menu.addAction(text)
        item.setEnabled(enabled)
        item.triggered.connect(lambda checked=False, action=action: action())
    menu.aboutToHide.connect(menu.deleteLater)
    menu.popup(view.viewport().mapToGlobal(position))
    return menu
