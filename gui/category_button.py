"""The palette's category button: the colour of the category new shapes get, and a menu to choose another."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from gui.docks.categories import HOTKEY_COUNT, CategoriesPanel
from gui.icons import swatch_icon


class CategoryButton(QToolButton):
    def __init__(self, categories: CategoriesPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._categories = categories
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setMenu(QMenu(self))
        self.menu().aboutToShow.connect(self._fill)
        categories.current_changed.connect(lambda _: self.refresh())
        categories.categories_shown.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        current = self._categories.record(self._categories.current_category_id())
        if current is None:
            self.setIcon(swatch_icon("#FFFFFF"))
            self.setText("No category")
            self.setToolTip("New shapes need a category: choose or add one")
            return
        self.setIcon(swatch_icon(current.colour))
        self.setText(current.name)
        self.setToolTip(f"New shapes: {current.name} (click to choose another; keys 1–{HOTKEY_COUNT})")

    def _fill(self) -> None:
        menu = self.menu()
        menu.clear()
        current = self._categories.current_category_id()
        for number, record in enumerate(self._categories.records(), start=1):
            key = f"\t{number}" if number <= HOTKEY_COUNT else ""
            action = menu.addAction(swatch_icon(record.colour), f"{record.name}{key}")
            action.setCheckable(True)
            action.setChecked(record.id == current)
            action.triggered.connect(lambda _=False, chosen=record.id: self._categories.set_current(chosen))
        if menu.isEmpty():
            menu.addAction("No categories yet (Categories panel ▸ Add)").setEnabled(False)
