"""The import report: every file of an import with what became of it, kept until the next import."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.errors import MarginaliaError
from engine.ingest.report import ImportReport


class ImportReportDialog(QDialog):
    """Non-modal: the curator can keep it open beside the gallery while fixing files."""

    def __init__(self, report: ImportReport, default_csv: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import report")
        self.setModal(False)
        self._report = report
        self._default_csv = default_csv
        rows = report.rows()
        self.summary = QLabel(report.summary())
        self.summary.setWordWrap(True)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Outcome", "File", "Details"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for number, row in enumerate(rows):
            for column, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(number, column, item)
        self.table.setColumnWidth(1, 340)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the report as text (tab-separated), for a spreadsheet or an e-mail")
        self.copy_button.clicked.connect(self.copy)
        self.csv_button = QPushButton("Save as CSV…")
        self.csv_button.clicked.connect(self.ask_save_csv)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.csv_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        self.note = QLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.resize(820, 420)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._report.as_text())
        self.note.setText("Copied.")

    def ask_save_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the import report", str(self._default_csv),
                                              "CSV (*.csv)")
        if path:
            self.save_csv(Path(path))

    def save_csv(self, path: Path) -> None:
        try:
            self._report.write_csv(path)
        except OSError as error:
            raise MarginaliaError(f"Cannot write {path}: {error.strerror or error}.") from error
        self.note.setText(f"Saved as {path}.")
