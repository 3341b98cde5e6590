"""The gallery: a virtualised grid of page thumbnails with filters and sorting.

Only rows that Qt actually paints ask for their thumbnail; requests are
batched into one background job every few milliseconds, and decoded
thumbnails are kept in a bounded cache, so 10,000 pages scroll as smoothly as
ten.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QListView,
    QMenu,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from engine.categories import CategoryRecord
from engine.imaging.thumbnails import thumbnail_path
from engine.ingest.examine import rebuild_cached_page
from engine.inventory import ImageRow
from engine.paths import displayable
from gui.context_menu import show_context_menu
from gui.empty_state import EmptyState
from gui.workers import JobRunner

ICON_SIDE = 144
CELL = QSize(ICON_SIDE + 16, ICON_SIDE + 34)
CACHE_ENTRIES = 1200
ROW_ROLE = Qt.ItemDataRole.UserRole + 1
IMAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 2

STATUS_FILTERS = {
    "All pages": lambda row: True,
    "Unlabelled": lambda row: row.accepted == 0 and row.proposed == 0,
    "Has proposals": lambda row: row.proposed > 0,
    "Done": lambda row: row.accepted > 0 and row.proposed == 0,
    "Missing or changed files": lambda row: row.missing or row.changed,
}
SORT_KEYS = {
    "Import order": lambda row: (row.id,),
    "File name": lambda row: (row.display_name.casefold(), row.id),
    "Title": lambda row: (row.title.casefold() or "\uffff", row.id),
    "Date": lambda row: (row.date or "\uffff", row.id),
    "Shelfmark": lambda row: (row.shelfmark.casefold() or "\uffff", row.id),
}


def caption(row: ImageRow) -> str:
    """A thumbnail's caption: pages of one work differ in their ends (file numbers, page numbers), so
    callers elide in the middle, never the end."""
    return f"{row.title} — {row.display_name}" if row.title else row.display_name


def _load_thumbnails(requests: list[tuple[int, str]], rows: dict[int, ImageRow],
                     thumbnail_dir: Path) -> list[tuple[int, QImage]]:
    loaded = []
    for image_id, path in requests:
        row = rows.get(image_id)
        if row is not None and not row.missing and not Path(path).is_file():
            # Not in this computer's cache (a team project joined here, a cache deleted): made again from the scan.
            rebuild_cached_page(Path(row.path), row.page_index, row.format, row.width, row.height, row.sha256,
                                thumbnail_dir)
        image = QImage(path)
        if not image.isNull():
            loaded.append((image_id, image.scaled(ICON_SIDE, ICON_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)))
    return loaded


class GalleryModel(QAbstractListModel):
    def __init__(self, jobs: JobRunner, thumbnail_dir: Path | None = None) -> None:
        super().__init__()
        self._jobs = jobs
        self._thumbnail_dir = thumbnail_dir
        self._rows: list[ImageRow] = []
        self._position: dict[int, int] = {}
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._wanted: dict[int, str] = {}
        self._in_flight: set[int] = set()
        self.thumbnail_requests = 0  # how many thumbnails were asked for (virtualisation check)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(15)
        self._flush_timer.timeout.connect(self._flush_requests)

    def set_rows(self, rows: list[ImageRow], thumbnail_dir: Path) -> None:
        self.beginResetModel()
        self._rows = rows
        self._thumbnail_dir = thumbnail_dir
        self._position = {row.id: index for index, row in enumerate(rows)}
        self._cache.clear()
        self._wanted.clear()
        self.endResetModel()

    def update_row(self, row: ImageRow) -> None:
        index = self._position.get(row.id)
        if index is None:
            return
        self._rows[index] = row
        model_index = self.index(index)
        self.dataChanged.emit(model_index, model_index)

    def position_of(self, image_id: int) -> int | None:
        return self._position.get(image_id)

    def rows(self) -> list[ImageRow]:
        return list(self._rows)

    def row_for(self, image_id: int) -> ImageRow | None:
        index = self._position.get(image_id)
        return self._rows[index] if index is not None else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.display_name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [row.title or row.display_name, f"{row.width}×{row.height} {row.format}",
                     f"{row.accepted} accepted, {row.proposed} proposed"]
            if row.shelfmark:
                lines.insert(1, row.shelfmark)
            if row.missing:
                lines.append(f"File missing: {displayable(row.path)}")
            elif row.changed:
                lines.append(f"File changed since import: {displayable(row.path)}")
            return "\n".join(lines)
        if role == ROW_ROLE:
            return row
        if role == IMAGE_ID_ROLE:
            return row.id
        return None

    def _thumbnail(self, row: ImageRow) -> QPixmap | None:
        pixmap = self._cache.get(row.id)
        if pixmap is not None:
            self._cache.move_to_end(row.id)
            return pixmap
        if row.id not in self._in_flight and self._thumbnail_dir is not None:
            self._wanted[row.id] = str(thumbnail_path(self._thumbnail_dir, row.sha256, row.page_index))
            self._flush_timer.start()
        return None

    def _flush_requests(self) -> None:
        if not self._wanted:
            return
        batch = list(self._wanted.items())
        self._wanted.clear()
        self._in_flight.update(image_id for image_id, _ in batch)
        self.thumbnail_requests += len(batch)
        rows = {image_id: self._rows[self._position[image_id]] for image_id, _ in batch if image_id in self._position}
        folder = self._thumbnail_dir
        assert folder is not None
        self._jobs.submit("Loading thumbnails", lambda progress, cancel: _load_thumbnails(batch, rows, folder),
                          lambda loaded: self._thumbnails_loaded(batch, loaded), visible=False)

    def _thumbnails_loaded(self, batch: list[tuple[int, str]], loaded: list[tuple[int, QImage]]) -> None:
        self._in_flight.difference_update(image_id for image_id, _ in batch)
        for image_id, image in loaded:
            self._cache[image_id] = QPixmap.fromImage(image)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
            position = self._position.get(image_id)
            if position is not None:
                model_index = self.index(position)
                self.dataChanged.emit(model_index, model_index, [Qt.ItemDataRole.DecorationRole])


class GalleryFilter(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self._status = "All pages"
        self._category_id: int | None = None
        self._text = ""
        self._sort_key = SORT_KEYS["Import order"]

    def _refilter(self) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10 and newer
            self.beginFilterChange()
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def set_status(self, status: str) -> None:
        self._status = status
        self._refilter()

    def set_category(self, category_id: int | None) -> None:
        self._category_id = category_id
        self._refilter()

    def set_text(self, text: str) -> None:
        self._text = text.casefold().strip()
        self._refilter()

    def set_sort(self, name: str) -> None:
        self._sort_key = SORT_KEYS[name]
        self.invalidate()
        self.sort(0)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        row: ImageRow = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
        if not STATUS_FILTERS[self._status](row):
            return False
        if self._category_id is not None and self._category_id not in row.category_ids:
            return False
        if self._text:
            haystack = " ".join((row.display_name, row.title, row.shelfmark, row.date, row.notes))
            return self._text in haystack.casefold()
        return True

    def lessThan(self, left: QModelIndex | QPersistentModelIndex,  # noqa: N802
                 right: QModelIndex | QPersistentModelIndex) -> bool:
        return self._sort_key(left.data(ROW_ROLE)) < self._sort_key(right.data(ROW_ROLE))


class GalleryDelegate(QStyledItemDelegate):
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        row: ImageRow = index.data(ROW_ROLE)
        cell: QRect = option.rect.adjusted(3, 3, -3, -3)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(QPen(QColor("#2F6FD0"), 2) if selected else Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#DCE8F8") if selected else QColor("#F4F2EE"))
        painter.drawRoundedRect(cell, 4, 4)
        picture = QRect(cell.left() + 5, cell.top() + 5, cell.width() - 10, ICON_SIDE)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap):
            scaled = pixmap.size().scaled(picture.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(picture.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(picture.adjusted(20, 10, -20, -10), QColor("#E2DED6"))
        self._badge(painter, row, picture)
        painter.setPen(QColor("#222222"))
        text_rect = QRect(cell.left() + 4, picture.bottom() + 4, cell.width() - 8, 20)
        name = painter.fontMetrics().elidedText(caption(row), Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, name)
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, row: ImageRow, picture: QRect) -> None:
        if row.missing:
            text, colour = "missing", QColor("#C62828")
        elif row.changed:
            text, colour = "file changed", QColor("#AD1457")
        elif row.proposed:
            text, colour = str(row.proposed), QColor("#EF8F00")
        elif row.accepted:
            text, colour = "✓", QColor("#2E7D32")
        else:
            return
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        width = max(20, painter.fontMetrics().horizontalAdvance(text) + 10)
        badge = QRect(picture.right() - width, picture.top(), width, 20)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 10, 10)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        font.setBold(False)
        painter.setFont(font)


class GalleryPanel(QWidget):
    image_selected = Signal(int)
    find_similar_requested = Signal(int)  # image id
    import_requested = Signal()  # the empty project's "Import scans…"

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = GalleryModel(jobs)
        self.proxy = GalleryFilter()
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit(placeholderText="Search title, shelfmark, date, notes…")
        self.search.setClearButtonEnabled(True)
        self.status_filter = QComboBox()
        self.status_filter.addItems(list(STATUS_FILTERS))
        self.category_filter = QComboBox()
        self.sort_order = QComboBox()
        self.sort_order.addItems(list(SORT_KEYS))
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setGridSize(CELL)
        self.view.setSpacing(0)
        self.view.setItemDelegate(GalleryDelegate(self.view))
        self.view.setModel(self.proxy)
        # Ctrl/Shift-click selects several pages for a tool to work on; the current one stays the open page.
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)

        # The category filter beside the search field, sized for "Any category" (longer names are shortened
        # in the closed box): three filters in one row cut it to "Any cate" in a laptop's gallery, and a
        # wider row would take the room from the page.
        self.category_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.category_filter.setMinimumContentsLength(len("Any category"))
        searching = QHBoxLayout()
        searching.addWidget(self.search, 1)
        searching.addWidget(self.category_filter)
        filters = QHBoxLayout()
        filters.addWidget(self.status_filter)
        filters.addWidget(self.sort_order)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(searching)
        layout.addLayout(filters)
        self.empty = EmptyState()
        self.empty.acted.connect(self._empty_action)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.view)
        self.pages.addWidget(self.empty)
        layout.addWidget(self.pages, 1)
        for signal in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.layoutChanged):
            signal.connect(self._show_empty_state)

        self.search.textChanged.connect(self.proxy.set_text)
        self.status_filter.currentTextChanged.connect(self.proxy.set_status)
        self.sort_order.currentTextChanged.connect(self.proxy.set_sort)
        self.category_filter.currentIndexChanged.connect(
            lambda _: self.proxy.set_category(self.category_filter.currentData()))
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.context_menu: QMenu | None = None

    def set_rows(self, rows: list[ImageRow], thumbnail_dir: Path) -> None:
        self.model.set_rows(rows, thumbnail_dir)
        self.proxy.sort(0)
        self._show_empty_state()

    def _show_empty_state(self) -> None:
        if self.proxy.rowCount():
            self.pages.setCurrentWidget(self.view)
            return
        if self.model.rowCount():
            self.empty.say("No page matches these filters.", "Show All Pages")
        else:
            self.empty.say("This project has no pages yet. Import scans, or a folder of them, to begin.",
                           "Import Scans…")
        self.pages.setCurrentWidget(self.empty)

    def _empty_action(self) -> None:
        if self.model.rowCount():
            self.show_all()
        else:
            self.import_requested.emit()

    def show_all(self) -> None:
        """Clear every filter."""
        self.search.clear()
        self.status_filter.setCurrentIndex(0)
        self.category_filter.setCurrentIndex(0)

    def set_categories(self, categories: list[CategoryRecord]) -> None:
        current = self.category_filter.currentData()
        self.category_filter.blockSignals(True)
        self.category_filter.clear()
        self.category_filter.addItem("Any category", None)
        for category in categories:
            self.category_filter.addItem(category.name, category.id)
        position = self.category_filter.findData(current)
        self.category_filter.setCurrentIndex(max(position, 0))
        self.category_filter.blockSignals(False)
        self.proxy.set_category(self.category_filter.currentData())

    def visible_image_ids(self) -> list[int]:
        return [self.proxy.index(row, 0).data(IMAGE_ID_ROLE) for row in range(self.proxy.rowCount())]

    def selected_image_ids(self) -> list[int]:
        """The selected pages in gallery order (the open page alone when nothing else is selected)."""
        rows = sorted(index.row() for index in self.view.selectionModel().selectedIndexes())
        ids = [self.proxy.index(row, 0).data(IMAGE_ID_ROLE) for row in rows]
        current = self.current_image_id()
        return ids or ([current] if current is not None else [])

    def current_image_id(self) -> int | None:
        index = self.view.currentIndex()
        return index.data(IMAGE_ID_ROLE) if index.isValid() else None

    def select_image(self, image_id: int) -> bool:
        position = self.model.position_of(image_id)
        if position is None:
            return False
        proxy_index = self.proxy.mapFromSource(self.model.index(position))
        if not proxy_index.isValid():
            return False
        self.view.setCurrentIndex(proxy_index)
        self.view.scrollTo(proxy_index)
        return True

    def reveal(self, image_id: int) -> bool:
        """Select a page even when the filters hide it (they are cleared then); ``False`` when it is gone."""
        if self.select_image(image_id):
            return True
        if self.model.position_of(image_id) is None:
            return False
        self.show_all()
        return self.select_image(image_id)

    def step(self, offset: int) -> None:
        ids = self.visible_image_ids()
        if not ids:
            return
        current = self.current_image_id()
        position = ids.index(current) if current in ids else -offset
        self.select_image(ids[max(0, min(len(ids) - 1, position + offset))])

    def _context_menu(self, position: QPoint) -> None:
        index = self.view.indexAt(position)
        if not index.isValid():
            return
        image_id = index.data(IMAGE_ID_ROLE)
        self.context_menu = show_context_menu(self.view, position, [
            ("Open", lambda: self.select_image(image_id), True),
            ("Find Pages Like This One", lambda: self.find_similar_requested.emit(image_id), True),
        ])

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.image_selected.emit(current.data(IMAGE_ID_ROLE))
