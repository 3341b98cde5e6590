"""The current page's annotations: select, review (accept/reject), delete."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLineEdit, QMenu, QTableView,
                               QVBoxLayout, QWidget)

from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from engine.store.types import AnnotationStatus
from gui.context_menu import show_context_menu
from gui.docks.annotation_table import ID_ROLE, AnnotationFilter, AnnotationTableModel
from gui.docks.layout import tree_with_buttons

NARROW_WIDTH = 400
STATUS_CHOICES = (("All statuses", None), ("Proposals", {AnnotationStatus.PROPOSED.value}),
                  ("Accepted", {AnnotationStatus.ACCEPTED.value}), ("Rejected", {AnnotationStatus.REJECTED.value}),
                  ("Not rejected", {AnnotationStatus.PROPOSED.value, AnnotationStatus.ACCEPTED.value}))


class AnnotationsPanel(QWidget):
    selection_changed = Signal(list)  # annotation ids
    accept_requested = Signal()
    reject_requested = Signal()
    accept_all_requested = Signal()
    delete_requested = Signal()
    bulk_requested = Signal()
    find_similar_requested = Signal(int)  # annotation id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = AnnotationTableModel()
        self.proxy = AnnotationFilter()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        # Rows come in id order already: no sort until the curator clicks a header (sorting thousands of
        # rows through Python calls would hold the page's opening for most of a second).
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        # The key columns fit a laptop's narrow dock: the category name gives way (elided), nothing scrolls.
        # Fixed widths (not "resize to contents") keep a page of thousands of rows quick to show.
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        digits = self.fontMetrics().horizontalAdvance("000000") + 12
        for column, width in ((0, digits), (2, 72), (4, digits), (3, 62), (5, 70)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            self.table.setColumnWidth(column, width)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._emit_selection())
        self.words = QLineEdit(placeholderText="Filter: category, source, by, #id", clearButtonEnabled=True)
        self.words.textChanged.connect(self.proxy.set_words)
        self.status_choice = QComboBox()
        for text, statuses in STATUS_CHOICES:
            self.status_choice.addItem(text, statuses)
        self.status_choice.currentIndexChanged.connect(
            lambda _: self.proxy.set_statuses(self.status_choice.currentData()))
        body = QWidget()
        tree_with_buttons(body, self.table, [
            ("Accept", "Accept the selected proposals (A)", self.accept_requested.emit),
            ("Reject", "Reject the selected proposals (R)", self.reject_requested.emit),
            ("Accept all", "Accept every proposal on this page (Shift+A)", self.accept_all_requested.emit),
            ("Delete", "Delete the selected annotations (Del)", self.delete_requested.emit),
            ("Bulk…", "Review many at once: by score, model, run or prompt, here or across pages (Ctrl+Shift+B)",
             self.bulk_requested.emit),
        ])
        filters = QHBoxLayout()
        filters.addWidget(self.words, 1)
        filters.addWidget(self.status_choice)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(0)
        filters.setContentsMargins(4, 0, 4, 0)
        layout.addLayout(filters)
        layout.addWidget(body, 1)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.context_menu: QMenu | None = None
        self._syncing = False

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        # In a laptop's narrow dock, who made a shape and with what gives way to what it is and where it
        # stands in review (both stay in each row's tooltip); a wider dock shows every column.
        narrow = event.size().width() < NARROW_WIDTH
        for column in (3, 5):
            self.table.setColumnHidden(column, narrow)
        super().resizeEvent(event)

    def _context_menu(self, position: QPoint) -> None:
        index = self.table.indexAt(position)
        if not index.isValid():
            return
        if not self.table.selectionModel().isRowSelected(index.row(), index.parent()):
            self.select([index.data(ID_ROLE)], announce=True)  # right-clicking a row acts on that row
        ids = self.selected_ids()
        self.context_menu = show_context_menu(self.table, position, [
            ("Accept", self.accept_requested.emit, True),
            ("Reject", self.reject_requested.emit, True),
            ("Delete", self.delete_requested.emit, True),
            None,
            ("Find Regions Like This One", lambda: self.find_similar_requested.emit(ids[0]), len(ids) == 1),
        ])

    def set_annotations(self, records: list[AnnotationRecord], categories: dict[int, CategoryRecord],
                        selected: list[int]) -> None:
        self._syncing = True
        try:
            self.model.set_records(records, categories)
        finally:
            self._syncing = False
        self.select(selected)

    def update_annotations(self, records: list[AnnotationRecord], removed: list[int],
                           categories: dict[int, CategoryRecord]) -> None:
        """Refresh the rows of ``records`` and drop those of ``removed``; the selection stays."""
        self._syncing = True
        try:
            self.model.apply(records, removed, categories)
        finally:
            self._syncing = False

    def row_count(self) -> int:
        """Rows shown (after the filters)."""
        return self.proxy.rowCount()

    def select(self, ids: list[int], announce: bool = False) -> None:
        selection = QItemSelection()
        for annotation_id in ids:
            row = self.model.row_of(annotation_id)
            if row is None:
                continue
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            if index.isValid():
                selection.select(index, index)
        self._syncing = not announce
        try:
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.table.selectionModel().select(selection, flags)
            if not selection.isEmpty():
                self.table.scrollTo(selection.indexes()[0])
        finally:
            self._syncing = False

    def selected_ids(self) -> list[int]:
        return sorted(index.data(ID_ROLE) for index in self.table.selectionModel().selectedRows())

    def _emit_selection(self) -> None:
        if not self._syncing:
            self.selection_changed.emit(self.selected_ids())
