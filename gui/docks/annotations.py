"""The current page's annotations: select, review (accept/reject), delete."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem, QWidget

from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from engine.store.types import AnnotationStatus
from gui.context_menu import show_context_menu
from gui.docks.categories import swatch
from gui.docks.layout import tree_with_buttons

_STATUS_COLOURS = {AnnotationStatus.PROPOSED: "#B26A00", AnnotationStatus.ACCEPTED: "#2E7D32",
                   AnnotationStatus.REJECTED: "#8A8A8A"}


NARROW_WIDTH = 400


class AnnotationsPanel(QWidget):
    selection_changed = Signal(list)  # annotation ids
    accept_requested = Signal()
    reject_requested = Signal()
    accept_all_requested = Signal()
    delete_requested = Signal()
    find_similar_requested = Signal(int)  # annotation id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["#", "Category", "Status", "Source", "Score", "By"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSortingEnabled(False)
        # The key columns fit a laptop's narrow dock: the category name gives way (elided), nothing scrolls.
        header = self.tree.header()
        header.setStretchLastSection(False)
        for column in (0, 2, 4):  # number, status, score: short, and what review is about
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in ((3, 62), (5, 70)):  # source, creator: elided, widened by hand when wanted
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            self.tree.setColumnWidth(column, width)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.itemSelectionChanged.connect(self._emit_selection)
        tree_with_buttons(self, self.tree, [
            ("Accept", "Accept the selected proposals (A)", self.accept_requested.emit),
            ("Reject", "Reject the selected proposals (R)", self.reject_requested.emit),
            ("Accept all", "Accept every proposal on this page (Shift+A)", self.accept_all_requested.emit),
            ("Delete", "Delete the selected annotations (Del)", self.delete_requested.emit),
        ])
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.context_menu: QMenu | None = None
        self._syncing = False

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        # In a laptop's narrow dock, who made a shape and with what gives way to what it is and where it
        # stands in review (both stay in each row's tooltip); a wider dock shows every column.
        narrow = event.size().width() < NARROW_WIDTH
        for column in (3, 5):
            self.tree.setColumnHidden(column, narrow)
        super().resizeEvent(event)

    def _context_menu(self, position: QPoint) -> None:
        item = self.tree.itemAt(position)
        if item is None:
            return
        if not item.isSelected():  # right-clicking a row acts on that row, as in file managers
            self.tree.setCurrentItem(item)
        ids = self.selected_ids()
        self.context_menu = show_context_menu(self.tree, position, [
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
            self.tree.clear()
            for record in records:
                item = self._row(record, categories)
                self.tree.addTopLevelItem(item)
                item.setSelected(record.id in selected)
        finally:
            self._syncing = False

    def update_annotations(self, records: list[AnnotationRecord], removed: list[int],
                           categories: dict[int, CategoryRecord]) -> None:
        """Refresh the rows of ``records``, drop those of ``removed``, keep id order."""
        selected = set(self.selected_ids())
        self._syncing = True
        try:
            for annotation_id in [*removed, *(record.id for record in records)]:
                position = self._position(annotation_id)
                if position is not None:
                    self.tree.takeTopLevelItem(position)
            for record in records:
                item = self._row(record, categories)
                self.tree.insertTopLevelItem(self._insertion_point(record.id), item)
                item.setSelected(record.id in selected)
        finally:
            self._syncing = False

    def _ids(self) -> list[int]:
        return [self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.tree.topLevelItemCount())]

    def _position(self, annotation_id: int) -> int | None:
        ids = self._ids()
        return ids.index(annotation_id) if annotation_id in ids else None

    def _insertion_point(self, annotation_id: int) -> int:
        return next((i for i, other in enumerate(self._ids()) if other > annotation_id), len(self._ids()))

    @staticmethod
    def _row(record: AnnotationRecord, categories: dict[int, CategoryRecord]) -> QTreeWidgetItem:
        category = categories.get(record.category_id)
        source = record.source_model or record.source_kind.value
        item = QTreeWidgetItem([
            str(record.id), category.name if category else "?", record.status.value, source,
            "" if record.score is None else f"{record.score:.2f}", record.creator])
        if category:
            item.setIcon(1, swatch(category.colour))
        tip = f"#{record.id} {item.text(1)} — {record.status.value}, by {record.creator or '?'} ({source})"
        for column in range(6):
            item.setToolTip(column, tip)
        item.setForeground(2, QBrush(QColor(_STATUS_COLOURS[record.status])))
        item.setData(0, Qt.ItemDataRole.UserRole, record.id)
        if record.status is AnnotationStatus.REJECTED:
            for column in range(6):
                item.setForeground(column, QBrush(QColor("#9A9A9A")))
        return item

    def select(self, ids: list[int]) -> None:
        self._syncing = True
        try:
            for index in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(index)
                item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) in ids)
        finally:
            self._syncing = False

    def selected_ids(self) -> list[int]:
        return sorted(item.data(0, Qt.ItemDataRole.UserRole) for item in self.tree.selectedItems())

    def _emit_selection(self) -> None:
        if not self._syncing:
            self.selection_changed.emit(self.selected_ids())
