"""The COCO export dialog: where the file goes, what its file names are relative to, and whether the images go along."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QWidget)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    path: Path
    images_root: Path
    with_images: bool
    include_proposals: bool


class ExportDialog(QDialog):
    def __init__(self, parent: QWidget | None, default_file: Path, default_root: Path,
                 include_proposals: bool) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export COCO annotations")
        self.file_edit = QLineEdit(str(default_file))
        self.root_edit = QLineEdit(str(default_root))
        self.with_images = QCheckBox("Put the page images in an images/ folder beside the file")
        self.with_images.setToolTip("Like CVAT and Label Studio exports: the folder then loads in any tool. "
                                    "Pages of multi-page files and turned photographs are written as PNG.")
        self.proposals = QCheckBox("Include proposals not yet reviewed (with their scores)")
        self.proposals.setChecked(include_proposals)
        self.problem = QLabel()
        self.problem.setStyleSheet("color:#B71C1C;")
        self.problem.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("COCO file:", self._with_button(self.file_edit, self._choose_file))
        form.addRow("File names relative to:", self._with_button(self.root_edit, self._choose_root))
        form.addRow("", self.with_images)
        form.addRow("", self.proposals)
        form.addRow("", self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.with_images.toggled.connect(lambda on: self.root_edit.setEnabled(not on))
        self.setMinimumWidth(560)

    @staticmethod
    def _with_button(edit: QLineEdit, choose) -> QWidget:  # noqa: ANN001
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Choose…")
        button.clicked.connect(choose)
        layout.addWidget(button)
        return row

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export COCO annotations", self.file_edit.text(),
                                              "COCO JSON (*.json)")
        if path:
            self.file_edit.setText(path)

    def _choose_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "File names relative to", self.root_edit.text())
        if folder:
            self.root_edit.setText(folder)

    def _accept(self) -> None:
        file_text, root_text = self.file_edit.text().strip(), self.root_edit.text().strip()
        if not file_text:
            self.problem.setText("Choose where to write the COCO file.")
        elif not Path(file_text).expanduser().parent.is_dir():
            self.problem.setText(f"The folder {Path(file_text).parent} does not exist.")
        elif not self.with_images.isChecked() and not Path(root_text).expanduser().is_dir():
            self.problem.setText(f"{root_text or 'The images folder'} is not a folder that exists.")
        else:
            self.accept()

    def request(self) -> ExportRequest:
        return ExportRequest(Path(self.file_edit.text().strip()).expanduser(),
                             Path(self.root_edit.text().strip()).expanduser(), self.with_images.isChecked(),
                             self.proposals.isChecked())
