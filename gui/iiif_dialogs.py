"""The IIIF dialogs: what to import from a manifest (address, size, canvases), and where a W3C Web Annotation
export goes (folder, the web address it will be published at, proposals or not)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.errors import MarginaliaError
from engine.iiif.ranges import canvas_positions
from engine.webannotation.publication import publication_base


@dataclass(frozen=True, slots=True)
class IiifImportRequest:
    source: str
    size: int | None  # the longer side in pixels; None: full resolution
    canvases: list[int] | None  # 0-based positions; None: all


class IiifImportDialog(QDialog):
    def __init__(self, parent: QWidget | None, start_folder: Path) -> None:
        super().__init__(parent)
        self._start_folder = start_folder
        self.setWindowTitle("Import from IIIF")
        self.address = QLineEdit()
        self.address.setPlaceholderText("https://…/manifest.json, or a saved manifest file")
        self.size = QComboBox()
        self.size.addItems(["Full resolution", "Longer side of at most…"])
        self.pixels = QSpinBox()
        self.pixels.setRange(100, 100_000)
        self.pixels.setValue(3000)
        self.pixels.setSuffix(" px")
        self.pixels.setEnabled(False)
        self.size.currentIndexChanged.connect(lambda index: self.pixels.setEnabled(index == 1))
        self.canvases = QLineEdit()
        self.canvases.setPlaceholderText("all, or numbers and ranges: 1-20,25")
        self.problem = _problem_label()
        form = QFormLayout(self)
        form.addRow("Manifest:", _with_button(self.address, "Open File…", self._choose_file))
        size_row = QWidget()
        size_layout = QHBoxLayout(size_row)
        size_layout.setContentsMargins(0, 0, 0, 0)
        size_layout.addWidget(self.size)
        size_layout.addWidget(self.pixels)
        size_layout.addStretch(1)
        form.addRow("Page images:", size_row)
        form.addRow("Canvases:", self.canvases)
        form.addRow("", self.problem)
        _finish(self, form, "Import", self._accept)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A saved IIIF manifest", str(self._start_folder),
                                              "IIIF manifest (*.json);;All files (*)")
        if path:
            self.address.setText(path)

    def _accept(self) -> None:
        if not self.address.text().strip():
            _say(self, self.problem, "Give the manifest's address, or open a saved manifest file.")
            return
        try:
            canvas_positions(self.canvases.text())
        except MarginaliaError as error:
            _say(self, self.problem, str(error))
            return
        self.accept()

    def request(self) -> IiifImportRequest:
        return IiifImportRequest(self.address.text().strip(), self.pixels.value() if self.size.currentIndex() else None,
                                 canvas_positions(self.canvases.text()))


@dataclass(frozen=True, slots=True)
class WebExportRequest:
    folder: Path
    base_url: str | None
    include_proposals: bool


class WebExportDialog(QDialog):
    def __init__(self, parent: QWidget | None, default_folder: Path) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export IIIF manifest with W3C Web Annotations")
        self.folder = QLineEdit(str(default_folder))
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("optional: https://…/ where you will publish the folder")
        self.base_url.setToolTip("The manifest's and annotations' identifiers start with this address. Left "
                                 "empty, they are the folder's own file: address, which viewers on this computer "
                                 "can open but a web page cannot.")
        self.proposals = QCheckBox("Include proposals not yet reviewed (marked as such)")
        self.problem = _problem_label()
        form = QFormLayout(self)
        form.addRow("Folder:", _with_button(self.folder, "Choose…", self._choose_folder))
        form.addRow("Published at:", self.base_url)
        form.addRow("", self.proposals)
        form.addRow("", self.problem)
        _finish(self, form, "Export", self._accept)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into…", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _accept(self) -> None:
        folder, address = Path(self.folder.text().strip()).expanduser(), self.base_url.text().strip()
        if not self.folder.text().strip():
            _say(self, self.problem, "Choose the folder to export into.")
        elif folder.exists() and not folder.is_dir():
            _say(self, self.problem, f"{folder} is a file; the export goes into a folder.")
        elif not folder.parent.is_dir():
            _say(self, self.problem, f"The folder {folder.parent} does not exist.")
        else:
            try:
                publication_base(address, folder)
            except MarginaliaError as error:
                _say(self, self.problem, str(error))
                return
            self.accept()

    def request(self) -> WebExportRequest:
        return WebExportRequest(Path(self.folder.text().strip()).expanduser(), self.base_url.text().strip() or None,
                                self.proposals.isChecked())


def _with_button(edit: QLineEdit, text: str, choose) -> QWidget:  # noqa: ANN001
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton(text)
    button.clicked.connect(choose)
    layout.addWidget(button)
    return row


def _problem_label() -> QLabel:
    label = QLabel()
    label.setStyleSheet("color:#B71C1C;")
    label.setWordWrap(True)
    return label


def _finish(dialog: QDialog, form: QFormLayout, ok_text: str, accept) -> None:  # noqa: ANN001
    """The problem row's companions: the buttons (OK named ``ok_text``, checked by ``accept``) and a width."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    buttons.accepted.connect(accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
    dialog.setMinimumWidth(560)


def _say(dialog: QDialog, label: QLabel, text: str) -> None:
    label.setText(text)
    dialog.adjustSize()  # a message of two lines gets its second line, not a clipped one
