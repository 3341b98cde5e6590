"""The taxonomy panel: categories with colours and hotkeys 1–9; add, rename, recolour, merge, delete."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap, QUndoStack
from PySide6.QtWidgets import QColorDialog, QInputDialog, QTreeWidget, QTreeWidgetItem, QWidget

from engine.categories import CategoryRecord
from gui.commands import AddCategory, EditContext, RemoveCategory, UpdateCategory
from gui.docks.layout import tree_with_buttons

HOTKEY_COUNT = 9


def swatch(colour: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class CategoriesPanel(QWidget):
    current_changed = Signal(object)  # category id or None
    categories_shown = Signal()  # the list (names, colours, counts) was refreshed

    def __init__(self, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._undo = undo_stack
        self._context: EditContext | None = None
        self._records: list[CategoryRecord] = []
        self._items: dict[int, QTreeWidgetItem] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Category", "Uses"])
        self.tree.setRootIsDecorated(True)
        self.tree.setColumnWidth(0, 190)
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemDoubleClicked.connect(lambda item, column: self.rename())
        tree_with_buttons(self, self.tree, [
            ("Add", "Add a category", self.add),
            ("Rename", "Rename the selected category", self.rename),
            ("Colour", "Change the selected category's colour", self.recolour),
            ("Merge", "Move its annotations to another category and remove it", self.merge),
            ("Delete", "Delete the selected category (only if unused)", self.delete),
        ])

    def set_context(self, context: EditContext | None) -> None:
        self._context = context

    def update_counts(self, counts: dict[int, int]) -> None:
        """New usage counts for some categories; the tree, its selection and scroll stay as they are."""
        self._records = [replace(record, annotation_count=counts.get(record.id, record.annotation_count))
                         for record in self._records]
        for category_id, count in counts.items():
            item = self._items.get(category_id)
            if item is not None:
                item.setText(1, str(count))

    def set_categories(self, records: list[CategoryRecord]) -> None:
        current = self.current_category_id()
        self._records = records
        self.tree.blockSignals(True)
        self.tree.clear()
        items: dict[int, QTreeWidgetItem] = {}
        for number, record in enumerate(records, start=1):
            label = f"{number}  {record.name}" if number <= HOTKEY_COUNT else f"    {record.name}"
            item = QTreeWidgetItem([label, str(record.annotation_count)])
            item.setIcon(0, swatch(record.colour))
            item.setData(0, Qt.ItemDataRole.UserRole, record.id)
            item.setToolTip(0, f"{record.name} — hotkey {number}" if number <= HOTKEY_COUNT else record.name)
            items[record.id] = item
        for record in records:
            parent = items.get(record.parent_id) if record.parent_id else None
            (parent.addChild if parent else self.tree.addTopLevelItem)(items[record.id])
        self.tree.expandAll()
        self.tree.blockSignals(False)
        self._items = items
        if current is not None and current in items:
            self.tree.setCurrentItem(items[current])
        elif records:  # a new shape always has a category to go to: the first, until the curator picks one
            self.tree.blockSignals(True)  # a default, not the curator's choice: nothing is remembered
            self.tree.setCurrentItem(items[records[0].id])
            self.tree.blockSignals(False)
        self.categories_shown.emit()

    def records(self) -> list[CategoryRecord]:
        return list(self._records)

    def record(self, category_id: int | None) -> CategoryRecord | None:
        return next((r for r in self._records if r.id == category_id), None)

    def by_hotkey(self, number: int) -> CategoryRecord | None:
        return self._records[number - 1] if 1 <= number <= min(HOTKEY_COUNT, len(self._records)) else None

    def current_category_id(self) -> int | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item else None

    def set_current(self, category_id: int | None) -> None:
        for item in self._all_items():
            if item.data(0, Qt.ItemDataRole.UserRole) == category_id:
                self.tree.setCurrentItem(item)
                return

    def _all_items(self) -> list[QTreeWidgetItem]:
        found: list[QTreeWidgetItem] = []
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            found.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return found

    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        self.current_changed.emit(current.data(0, Qt.ItemDataRole.UserRole) if current else None)

    # -- editing (each an undoable command) -------------------------------------------

    def add(self, name: str | None = None) -> CategoryRecord | None:
        if self._context is None:
            return None
        if not name:
            name, ok = QInputDialog.getText(self, "Add category", "Name of the new category:")
            if not ok or not name.strip():
                return None
        command = AddCategory(self._context, name)
        self._undo.push(command)
        if command.record is not None:
            self.set_current(command.record.id)
        return command.record

    def rename(self) -> None:
        record = self.record(self.current_category_id())
        if record is None or self._context is None:
            return
        name, ok = QInputDialog.getText(self, "Rename category", "New name:", text=record.name)
        if ok and name.strip() and name.strip() != record.name:
            self._undo.push(UpdateCategory(self._context, record.id, name=name))

    def recolour(self) -> None:
        record = self.record(self.current_category_id())
        if record is None or self._context is None:
            return
        colour = QColorDialog.getColor(QColor(record.colour), self, f"Colour of {record.name}")
        if colour.isValid():
            self._undo.push(UpdateCategory(self._context, record.id, colour=colour.name()))

    def merge(self) -> None:
        record = self.record(self.current_category_id())
        if record is None or self._context is None:
            return
        others = [r for r in self._records if r.id != record.id]
        if not others:
            return
        name, ok = QInputDialog.getItem(self, "Merge category",
                                        f"Move the {record.annotation_count} annotation(s) of "
                                        f"'{record.name}' into:", [r.name for r in others], 0, False)
        if ok:
            target = next(r for r in others if r.name == name)
            self._undo.push(RemoveCategory(self._context, record, target))

    def delete(self) -> None:
        record = self.record(self.current_category_id())
        if record is not None and self._context is not None:
            self._undo.push(RemoveCategory(self._context, record, None))
