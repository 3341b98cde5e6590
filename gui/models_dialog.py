"""The Models dialog: what is installed and available, download with progress and cancel, import, remove."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.models.catalogue import CATALOGUE, ModelSpec, UserSuppliedSource
from engine.models.download import download_model
from engine.models.precision import describe as describe_precision
from engine.models.precision import set_policy
from engine.models.runtime import available_devices
from engine.models.store import InstalledModel, ModelStore
from gui.notifications import NotificationArea
from gui.settings import MODEL_DEVICES, AppSettings
from gui.workers import JobRunner

COLUMNS = ("Model", "Task", "Size", "Licence", "Status")


class ModelsDialog(QDialog):
    def __init__(self, store: ModelStore, jobs: JobRunner, notifications: NotificationArea,
                 parent: QWidget | None = None, settings: AppSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.setWindowTitle("Models")
        self.store = store
        self._jobs = jobs
        self._notes = notifications
        self._downloading: set[str] = set()
        # Components (a tokenizer for another model) come with the model that needs them.
        self.specs = [spec for spec in CATALOGUE if spec.task != "component"]
        self.table = QTableWidget(len(self.specs), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.download_button = QPushButton("Download")
        self.import_button = QPushButton("Import from file…")
        self.remove_button = QPushButton("Remove")
        self.download_button.clicked.connect(self.download_selected)
        self.import_button.clicked.connect(self.import_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.import_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        # A failed download says why here, where the curator is, with the way round it as a button.
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#611A15;")
        self.problem_import = QPushButton("Import from file…")
        self.problem_import.clicked.connect(self._import_after_failure)
        self._failed_model: str | None = None
        problem_row = QHBoxLayout()
        problem_row.addWidget(self.problem, 1)
        problem_row.addWidget(self.problem_import)
        self.problem.hide()
        self.problem_import.hide()
        # Where a model that is not downloaded comes from, in plain sight (a disabled button's tip may not show).
        self.where_to_get = QLabel()
        self.where_to_get.setObjectName("models-where-to-get")
        self.where_to_get.setWordWrap(True)
        self.where_to_get.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.where_to_get.hide()
        layout = QVBoxLayout(self)
        where = QLabel(f"Models are shared by all projects and kept in {store.root} (to keep them elsewhere, "
                       "such as a shared drive, start Marginalia with MARGINALIA_MODELS set to that folder). "
                       "Nothing is downloaded until you click Download; downloads run in the background and "
                       "the status bar shows their progress.")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.where_to_get)
        layout.addLayout(problem_row)
        if settings is not None:
            layout.addLayout(self._device_row(settings))
            layout.addLayout(self._precision_row(settings))
            battery_row = QHBoxLayout()
            battery_row.addWidget(self.battery_choice)
            battery_row.addStretch(1)
            layout.addLayout(battery_row)
            layout.addLayout(self._cluster_row(settings))
        self.resize(760, 520)
        self.refresh()

    def _device_row(self, settings: AppSettings) -> QHBoxLayout:
        self.device_choice = QComboBox()
        for key, label in MODEL_DEVICES.items():
            self.device_choice.addItem(label, key)
        self.device_choice.setCurrentIndex(list(MODEL_DEVICES).index(settings.model_device))
        self.device_choice.currentIndexChanged.connect(self._device_chosen)
        self.devices_found = QLabel("Looking for a GPU…")
        row = QHBoxLayout()
        row.addWidget(QLabel("Run models on:"))
        row.addWidget(self.device_choice)
        row.addWidget(self.devices_found, 1)
        # Finding the GPU imports torch (seconds): never on the UI thread.
        self._jobs.submit("Looking for a GPU", lambda progress, cancel: available_devices(), self._show_devices)
        return row

    def _precision_row(self, settings: AppSettings) -> QHBoxLayout:
        self.precision_choice = QComboBox()
        self.precision_choice.addItem("Automatic", "automatic")
        self.precision_choice.addItem("Always full precision (float32)", "float32")
        self.precision_choice.setCurrentIndex(max(0, self.precision_choice.findData(settings.model_precision)))
        self.precision_choice.setToolTip("Half precision (bfloat16) roughly halves the time to prepare a page on "
                                         "processors that have it, with masks and search results that match "
                                         "full precision; full precision is slower everywhere.")
        self.precision_choice.currentIndexChanged.connect(self._precision_chosen)
        self.precision_found = QLabel("")
        self.precision_found.setWordWrap(True)
        self.battery_choice = QCheckBox("Pause background model work on battery")
        self.battery_choice.setToolTip("Indexing, preparing every page for SAM, finding and text runs wait while "
                                       "the laptop runs on its battery, and go on when it is plugged in. What "
                                       "you are working on (a page, a click) is never paused.")
        self.battery_choice.setChecked(settings.pause_on_battery)
        self.battery_choice.toggled.connect(self._battery_chosen)
        row = QHBoxLayout()
        row.addWidget(QLabel("Precision:"))
        row.addWidget(self.precision_choice)
        row.addWidget(self.precision_found, 1)
        # Reading the processor's features imports torch: off the UI thread.
        self._jobs.submit("Checking the processor", lambda progress, cancel: describe_precision(),
                          self.precision_found.setText, visible=False)
        return row

    def _cluster_row(self, settings: AppSettings) -> QHBoxLayout:
        """Where jobs over several pages run (Find Text, Find by description, Propose Regions, Prepare SAM for
        all pages, indexing): here, or on a Ray cluster (``marginalia batch`` says more)."""
        self.cluster_choice = QComboBox()
        self.cluster_choice.addItem("This computer", "")
        self.cluster_choice.addItem("Ray cluster at…", "cluster")
        self.cluster_address = QLineEdit(settings.large_jobs_cluster)
        self.cluster_address.setPlaceholderText("ray://head.library.org:10001, auto, or local")
        self.cluster_address.setToolTip(
            "A Ray cluster's address (ray://HOST:10001), 'auto' for the cluster this computer belongs to, or "
            "'local' for a Ray started here. Its workers need Marginalia and the same models installed; they read "
            "the scans where they see them, else this computer sends the pages. Results are written here.")
        self.cluster_choice.setCurrentIndex(1 if settings.large_jobs_cluster else 0)
        self.cluster_address.setEnabled(bool(settings.large_jobs_cluster))
        self.cluster_choice.currentIndexChanged.connect(self._cluster_chosen)
        self.cluster_address.editingFinished.connect(self._cluster_chosen)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run large jobs on:"))
        row.addWidget(self.cluster_choice)
        row.addWidget(self.cluster_address, 1)
        return row

    def _cluster_chosen(self) -> None:
        assert self._settings is not None
        on_cluster = self.cluster_choice.currentData() == "cluster"
        self.cluster_address.setEnabled(on_cluster)
        address = self.cluster_address.text().strip() if on_cluster else ""
        if address == self._settings.large_jobs_cluster:
            return
        self._settings.large_jobs_cluster = address
        if address:
            self._notes.info(f"Jobs over several pages will run on the Ray cluster at {address}.")
        elif not on_cluster:
            self._notes.info("Jobs over several pages will run on this computer.")

    def _precision_chosen(self) -> None:
        assert self._settings is not None
        self._settings.model_precision = self.precision_choice.currentData()
        set_policy(self._settings.model_precision)
        self._notes.info(f"Models will compute in: {self.precision_choice.currentText()} (from their next load).")

    def _battery_chosen(self, checked: bool) -> None:
        assert self._settings is not None
        self._settings.pause_on_battery = checked

    def _show_devices(self, devices: list[str]) -> None:
        gpus = [device.split(" ", 1)[-1] if device.startswith("cuda") else "Apple GPU" for device in devices
                if device != "cpu"]
        self.devices_found.setText(f"This computer has: {', '.join(gpus)}." if gpus
                                   else "No GPU found here: models run on the CPU (slower, but they work).")

    def _device_chosen(self) -> None:
        assert self._settings is not None
        self._settings.model_device = self.device_choice.currentData()
        self._notes.info(f"Models will run on: {self.device_choice.currentText()} (from their next load).")

    def refresh(self) -> None:
        installed = {model.id for model in self.store.installed()}
        for row, spec in enumerate(self.specs):
            status = ("downloading…" if spec.id in self._downloading
                      else "installed" if spec.id in installed
                      else "not installed: import by hand" if isinstance(spec.source, UserSuppliedSource)
                      else "not installed")
            cells = (spec.name, spec.task, f"{spec.download_size / 1e6:,.0f} MB", spec.licence, status)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, spec.id)
                self.table.setItem(row, column, item)
        for column in range(1, len(COLUMNS)):
            self.table.resizeColumnToContents(column)
        self._update_buttons()

    def selected_spec(self) -> ModelSpec | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        return self.specs[rows.pop()] if len(rows) == 1 else None

    def select(self, model_id: str) -> None:
        self.table.selectRow(next(i for i, spec in enumerate(self.specs) if spec.id == model_id))

    def _update_buttons(self) -> None:
        spec = self.selected_spec()
        installed = spec is not None and self.store.get(spec.id) is not None
        busy = spec is not None and spec.id in self._downloading
        downloadable = spec is not None and not isinstance(spec.source, UserSuppliedSource)
        self.download_button.setEnabled(downloadable and not installed and not busy)
        if spec is not None and not downloadable:
            where = f"No dependable download: get {spec.source.where_to_get_it}; then use Import from file…"
            self.download_button.setToolTip(where)
            self.where_to_get.setText(f"{spec.name}: {where}")
        else:
            self.download_button.setToolTip("")
            self.where_to_get.setText("")
        self.where_to_get.setVisible(bool(self.where_to_get.text()))
        self.import_button.setEnabled(spec is not None and not busy)
        self.remove_button.setEnabled(installed and not busy)

    def download_selected(self) -> None:
        spec = self.selected_spec()
        if spec is None:
            return
        self._downloading.add(spec.id)
        self._show_problem(None, "")
        self.refresh()

        def finished(installed: InstalledModel) -> None:
            self._notes.info(f"{spec.name} is installed; {installed.how_checked()}.")

        job = self._jobs.submit(f"Downloading {spec.name}",
                                lambda progress, cancel: download_model(spec.id, self.store, progress=progress,
                                                                        cancel=cancel),
                                finished, on_failure=lambda message: self._show_problem(spec.id, message),
                                background=True)
        job.ended.connect(lambda: (self._downloading.discard(spec.id), self.refresh()))

    def _show_problem(self, model_id: str | None, message: str) -> None:
        self._failed_model = model_id
        self.problem.setText(message)
        self.problem.setVisible(model_id is not None)
        self.problem_import.setVisible(model_id is not None)

    def _import_after_failure(self) -> None:
        if self._failed_model is not None:
            self.select(self._failed_model)
            self.import_selected()

    def import_selected(self, paths: list[Path] | None = None) -> None:
        spec = self.selected_spec()
        if spec is None:
            return
        if paths is None:
            start = self._settings.start_folder("models") if self._settings is not None else Path.home()
            chosen, _ = QFileDialog.getOpenFileNames(self, f"Files of {spec.name}", str(start))
            paths = [Path(p) for p in chosen]
            if paths and self._settings is not None:
                self._settings.remember_folder("models", paths[0].parent)
        if not paths:
            return
        job = self._jobs.submit(f"Importing {spec.name}",
                                lambda progress, cancel: self.store.import_files(spec.id, paths, cancel=cancel),
                                lambda installed: self._notes.info(f"{spec.name} is installed; "
                                                                   f"{installed.how_checked()}."),
                                background=True)
        job.ended.connect(self.refresh)

    def remove_selected(self) -> None:
        spec = self.selected_spec()
        if spec is not None:
            self.store.remove(spec.id)
            self._notes.info(f"{spec.name} was removed.")
            self.refresh()
