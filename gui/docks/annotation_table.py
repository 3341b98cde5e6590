"""The Annotations panel's table: one row per annotation of the open page, as a Qt model.

Rows are kept in id order with an id → row index, so an edit updates, inserts or removes just its
rows (a page with thousands of annotations stays quick to edit). A sort/filter proxy sorts by any
column (numbers as numbers) and filters by status and by text (category, source, creator, #id).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor, QIcon

from engine.annotations import AnnotationRecord
from engine.categories import CategoryRecord
from engine.store.types import AnnotationStatus
from gui.docks.categories import swatch

COLUMNS = ("#", "Category", "Status", "Source", "Score", "By")
ID_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2
STATUS_COLOURS = {AnnotationStatus.PROPOSED: "#B26A00", AnnotationStatus.ACCEPTED: "#2E7D32",
                  AnnotationStatus.REJECTED: "#8A8A8A"}
_GREYED = QColor("#9A9A9A")
Index = QModelIndex | QPersistentModelIndex


class AnnotationTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._records: list[AnnotationRecord] = []
        self._ids: list[int] = []  # sorted; parallel to _records
        self._categories: dict[int, CategoryRecord] = {}
        self._swatches: dict[str, QIcon] = {}

    # -- contents ------------------------------------------------------------------------------

    def set_records(self, records: list[AnnotationRecord], categories: dict[int, CategoryRecord]) -> None:
        self.beginResetModel()
        self._records = sorted(records, key=lambda record: record.id)
        self._ids = [record.id for record in self._records]
        self._categories = dict(categories)
        self.endResetModel()

    def set_categories(self, categories: dict[int, CategoryRecord]) -> None:
        """Names and colours changed: repaint the category column only."""
        self._categories = dict(categories)
        if self._records:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self._records) - 1, 1))

    def apply(self, fresh: list[AnnotationRecord], removed: list[int],
              categories: dict[int, CategoryRecord]) -> None:
        """Replace the rows of ``fresh`` (inserting new ones in id order), drop those of ``removed``."""
        self._categories = dict(categories)
        for annotation_id in removed:
            row = self.row_of(annotation_id)
            if row is not None:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._records[row], self._ids[row]
                self.endRemoveRows()
        for record in fresh:
            row = self.row_of(record.id)
            if row is not None:
                self._records[row] = record
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                continue
            row = bisect_left(self._ids, record.id)
            self.beginInsertRows(QModelIndex(), row, row)
            self._records.insert(row, record)
            self._ids.insert(row, record.id)
            self.endInsertRows()

    def row_of(self, annotation_id: int) -> int | None:
        row = bisect_left(self._ids, annotation_id)
        return row if row < len(self._ids) and self._ids[row] == annotation_id else None

    def record(self, row: int) -> AnnotationRecord:
        return self._records[row]

    # -- the Qt model -----------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record, column = self._records[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == SORT_ROLE:
            if column == 0:
                return record.id
            if column == 4:
                return -1.0 if record.score is None else record.score
            if column == 1:
                return self._category_name(record).casefold()  # by name, whatever its place in a hierarchy
            return self._text(record, column).casefold()
        if role == ID_ROLE:
            return record.id
        if role == STATUS_ROLE:
            return record.status.value
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"#{record.id} {self._category_name(record)} — {record.status.value}, by "
                    f"{record.creator or '?'} ({record.source_model or record.source_kind.value})")
        if role == Qt.ItemDataRole.ForegroundRole:
            if record.status is AnnotationStatus.REJECTED:
                return QBrush(_GREYED)
            if column == 2:
                return QBrush(QColor(STATUS_COLOURS[record.status]))
        if role == Qt.ItemDataRole.DecorationRole and column == 1:
            category = self._categories.get(record.category_id)
            if category is None:
                return None
            if category.colour not in self._swatches:  # thousands of rows share a handful of colours
                self._swatches[category.colour] = swatch(category.colour)
            return self._swatches[category.colour]
        return None

    def _depth(self, record: AnnotationRecord) -> int:
        """How deep in a text hierarchy the annotation lies among this page's rows (0: at the top)."""
        depth, seen = 0, {record.id}
        while record.parent_id is not None and record.parent_id not in seen:
            row = self.row_of(record.parent_id)
            if row is None:
                break
            record = self._records[row]
            seen.add(record.id)
            depth += 1
        return depth

    def _category_name(self, record: AnnotationRecord) -> str:
        category = self._categories.get(record.category_id)
        return category.name if category else "?"

    def _text(self, record: AnnotationRecord, column: int) -> str:
        if column == 0:
            return str(record.id)
        if column == 1:  # a line under its paragraph, a word under its line: indented, as in a tree
            depth = self._depth(record)
            return f"{'   ' * (depth - 1)}└ {self._category_name(record)}" if depth else self._category_name(record)
        if column == 2:
            return record.status.value
        if column == 3:
            return record.source_model or record.source_kind.value
        if column == 4:
            return "" if record.score is None else f"{record.score:.2f}"
        return record.creator


class AnnotationFilter(QSortFilterProxyModel):
    """Sorting by any column; filtering by status and by words in the category, source or creator."""

    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SORT_ROLE)
        self._statuses: set[str] | None = None
        self._words = ""

    def set_statuses(self, statuses: set[str] | None) -> None:
        self._statuses = statuses
        self.invalidateRowsFilter()

    def set_words(self, words: str) -> None:
        self._words = words.strip().casefold()
        self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802
        model = self.sourceModel()
        if self._statuses is not None and \
                model.index(source_row, 2, source_parent).data(STATUS_ROLE) not in self._statuses:
            return False
        if not self._words:
            return True
        texts = [str(model.index(source_row, column, source_parent).data()).casefold() for column in (1, 3, 5)]
        return any(self._words in text for text in texts) or self._words.lstrip("#") == \
            str(model.index(source_row, 0, source_parent).data())
