"""The Text dock: the open page's text as a tree (paragraph ▸ line ▸ word) with its transcriptions.

Selecting a line selects it and its words on the page; selecting on the page selects in the tree. The
Text column is edited in place (double-click or F2): each change is one undoable step. Check boxes show or
hide each level on the page (remembered with the project's layers).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QGridLayout, QHeaderView, QLabel, QStyledItemDelegate,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from engine.layout.model import LINE, TEXT
from gui.tools.seam import ToolContext

ID_ROLE = Qt.ItemDataRole.UserRole
LEVEL_ROLE = Qt.ItemDataRole.UserRole + 1  # the category's name
LEVELS = (("Text strokes", "Strokes"), ("Paragraph", "Paragraphs"), ("Line", "Lines"), ("Word", "Words"))


class OneLineText(QStyledItemDelegate):
    """A transcription on one line in its row: a paragraph's line breaks drew over the rows below it. The whole
    text is in the row's tooltip and in the editor."""

    def displayText(self, value: object, locale: object) -> str:  # noqa: N802 - Qt's name
        text = super().displayText(value, locale)  # Qt has turned line breaks into U+2028 by now
        parts = text.splitlines()  # splits at U+2028 and "\n" alike
        return " ⏎ ".join(part.strip() for part in parts) if len(parts) > 1 else text


class TextTreePanel(QWidget):
    def __init__(self, context: ToolContext, transcribe: Callable[[int, str], None]) -> None:
        super().__init__()
        self.context = context
        self._transcribe = transcribe
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Level", "Text", "Status"])
        # The text takes the room there is; level and status only what they need (a laptop's narrow dock).
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setItemDelegateForColumn(1, OneLineText(self.tree))
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.tree.itemSelectionChanged.connect(self._tree_selected)
        self.tree.itemChanged.connect(self._edited)
        self.shown: dict[str, QCheckBox] = {}
        # Two by two: the dock stays narrow enough for a laptop's right column beside the page.
        toggles = QGridLayout()
        toggles.setContentsMargins(4, 0, 4, 0)
        toggles.addWidget(QLabel("Show:"), 0, 0)
        for index, (category, label) in enumerate(LEVELS):
            box = QCheckBox(label)
            box.setChecked(True)
            box.toggled.connect(lambda on, name=category: self._show_level(name, on))
            toggles.addWidget(box, index // 2, 1 + index % 2)
            self.shown[category] = box
        toggles.setColumnStretch(3, 1)
        self.empty = QLabel("No text on this page yet: run Find Text (T), or import PAGE XML or ALTO.")
        self.empty.setWordWrap(True)
        self.empty.setContentsMargins(6, 6, 6, 6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(toggles)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._syncing = False
        self._rebuild_soon = QTimer(self)
        self._rebuild_soon.setSingleShot(True)
        self._rebuild_soon.setInterval(0)  # one rebuild for a burst of row changes
        self._rebuild_soon.timeout.connect(self.rebuild)
        table = context.annotations.model
        for signal in (table.modelReset, table.rowsInserted, table.rowsRemoved, table.dataChanged):
            signal.connect(lambda *_: self._rebuild_soon.start())
        context.canvas.selection_changed.connect(self._page_selected)

    # -- contents -------------------------------------------------------------------------------------

    def rebuild(self) -> None:
        records = self.context.labelling.records()
        categories = {c.id: c for c in self.context.labelling.categories()}
        text_ids = _text_categories(categories)
        shown = [r for r in records if r.category_id in text_ids]
        expanded = {annotation_id for annotation_id, item in self._items.items() if item.isExpanded()}
        selected = self.selected_ids()
        self._syncing = True
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            self._items = {}
            present = {r.id for r in shown}
            children: dict[int | None, list[AnnotationRecord]] = {}
            for record in shown:
                children.setdefault(record.parent_id if record.parent_id in present else None, []).append(record)

            def add(parent: QTreeWidget | QTreeWidgetItem, record: AnnotationRecord) -> None:
                name = categories[record.category_id].name
                order = "" if record.reading_order is None else f" {record.reading_order + 1}"
                item = QTreeWidgetItem([f"{name}{order}", record.text or "", record.status.value])
                item.setData(0, ID_ROLE, record.id)
                item.setData(0, LEVEL_ROLE, name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(1, f"{record.text}\n\n(Double-click to edit)" if record.text
                                else "Double-click to type the transcription")
                parent.addChild(item) if isinstance(parent, QTreeWidgetItem) else parent.addTopLevelItem(item)
                self._items[record.id] = item
                for child in _ordered(children.get(record.id, [])):
                    add(item, child)
                item.setExpanded(record.id in expanded)

            for record in _ordered(children.get(None, [])):
                add(self.tree, record)
            for annotation_id in selected:
                if annotation_id in self._items:
                    self._items[annotation_id].setSelected(True)
        finally:
            self.tree.blockSignals(False)
            self._syncing = False
        self.empty.setVisible(not shown)
        self.tree.setVisible(bool(shown))
        self._sync_toggles(categories)

    def selected_ids(self) -> list[int]:
        return [item.data(0, ID_ROLE) for item in self.tree.selectedItems()]

    def item(self, annotation_id: int) -> QTreeWidgetItem | None:
        return self._items.get(annotation_id)

    # -- selection, both ways ------------------------------------------------------------------------

    def _tree_selected(self) -> None:
        if self._syncing:
            return
        ids: list[int] = []
        for item in self.tree.selectedItems():
            ids.append(item.data(0, ID_ROLE))
            if item.data(0, LEVEL_ROLE) == LINE:  # a line: its words light up with it
                ids += [item.child(i).data(0, ID_ROLE) for i in range(item.childCount())]
        self.context.labelling.select_annotations(ids)

    def _page_selected(self, ids: list[int]) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.tree.blockSignals(True)
        try:
            self.tree.clearSelection()
            for annotation_id in ids:
                item = self._items.get(annotation_id)
                if item is not None:
                    item.setSelected(True)
                    parent = item.parent()
                    while parent is not None:
                        parent.setExpanded(True)
                        parent = parent.parent()
            if ids and ids[0] in self._items:
                self.tree.scrollToItem(self._items[ids[0]])
        finally:
            self.tree.blockSignals(False)
            self._syncing = False

    # -- transcriptions and levels --------------------------------------------------------------------

    def _edited(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 1 and not self._syncing:
            self._transcribe(item.data(0, ID_ROLE), item.text(1).strip())

    def _show_level(self, category_name: str, shown: bool) -> None:
        category = next((c for c in self.context.labelling.categories() if c.name == category_name), None)
        layers = self.context.canvas.layers
        if category is None or layers.showing("category", category.id) == shown:
            return
        layers = layers.toggled("category", category.id)
        self.context.canvas.set_layers(layers)
        project = self.context.project()
        if project is not None:
            self.context.settings.set_layers(project.folder, layers.to_json())

    def _sync_toggles(self, categories: dict[int, CategoryRecord]) -> None:
        by_name = {c.name: c.id for c in categories.values()}
        for name, box in self.shown.items():
            box.blockSignals(True)
            box.setEnabled(name in by_name)
            box.setChecked(name not in by_name or self.context.canvas.layers.showing("category", by_name[name]))
            box.blockSignals(False)


def _text_categories(categories: dict[int, CategoryRecord]) -> set[int]:
    """The Text category's children (paragraphs, headings, lines, words, strokes…)."""
    text = next((c.id for c in categories.values() if c.name == TEXT and c.parent_id is None), None)
    return {c.id for c in categories.values() if text is not None and c.parent_id == text}


def _ordered(records: list[AnnotationRecord]) -> list[AnnotationRecord]:
    return sorted(records, key=lambda r: (r.reading_order is None, r.reading_order or 0, r.bbox_y, r.bbox_x, r.id))
