"""The current page's descriptive metadata, edited in place (every change is saved and undoable)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QWidget

from engine.inventory import ImageRow
from engine.paths import displayable


class MetadataPanel(QWidget):
    edited = Signal(str, str)  # field, new value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._row: ImageRow | None = None
        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        self.size_label = QLabel()
        self.fields: dict[str, QLineEdit] = {
            "title": QLineEdit(), "shelfmark": QLineEdit(), "date": QLineEdit(),
        }
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Free notes about this page")
        self.notes.installEventFilter(self)
        layout = QFormLayout(self)
        layout.addRow("File", self.file_label)
        layout.addRow("Size", self.size_label)
        for field, editor in self.fields.items():
            editor.setPlaceholderText({"date": "e.g. 1784, c. 1650, 12th century"}.get(field, ""))
            editor.editingFinished.connect(lambda field=field: self._commit(field))
            layout.addRow(field.capitalize(), editor)
        layout.addRow("Notes", self.notes)
        self.setEnabled(False)

    def set_image(self, row: ImageRow | None) -> None:
        self._row = row
        self.setEnabled(row is not None)
        self.file_label.setText(displayable(row.path) if row else "")
        self.size_label.setText(f"{row.width} × {row.height} px, {row.format}" if row else "")
        for field, editor in self.fields.items():
            editor.setText(getattr(row, field) if row else "")
            editor.setCursorPosition(0)  # show the start of long titles
        self.notes.setPlainText(row.notes if row else "")

    def _commit(self, field: str) -> None:
        if self._row is None:
            return
        value = (self.notes.toPlainText() if field == "notes" else self.fields[field].text()).strip()
        if value != getattr(self._row, field):
            self.edited.emit(field, value)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.notes and event.type() == QEvent.Type.FocusOut:
            self._commit("notes")
        return super().eventFilter(watched, event)

    def flush(self) -> None:
        """Save a field still being typed in (before switching pages or closing)."""
        for field, editor in self.fields.items():
            if editor.hasFocus():
                self._commit(field)
        if self.notes.hasFocus():
            self._commit("notes")
