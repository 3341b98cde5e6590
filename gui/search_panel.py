"""The Search panel: find pages by words, like a page, or like a region; index the project for it.

Searching embeds the words with the chosen CLIP model off the UI thread; the
results grid shows thumbnails with their similarity, and a click opens the
page (the region's page, with the region selected). "Only pages shown in the
gallery" combines a search with the gallery's filters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from engine.imaging.thumbnails import thumbnail_path
from engine.models.catalogue import CATALOGUE

if TYPE_CHECKING:
    from engine.retrieval.search import Hit
    from gui.main_window import MainWindow

CLIP_MODELS = [spec for spec in CATALOGUE if spec.family == "open-clip"]
RESULTS = 60
HIT_ROLE = Qt.ItemDataRole.UserRole


class SearchPanel(QWidget):
    results_shown = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the collection, e.g. 'a coat of arms', 'Wappen', 'carte'")
        self.query.setClearButtonEnabled(True)
        self.query.returnPressed.connect(self.search)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.model_choice = QComboBox()
        for spec in CLIP_MODELS:
            self.model_choice.addItem(spec.name, spec.id)
        self.model_choice.setToolTip("The CLIP model; choose the multilingual one for German, Latin, French…")
        self.index_button = QPushButton("Index for search")
        self.index_button.setToolTip("Embed every page not yet indexed with this model (runs in the background)")
        self.index_button.clicked.connect(self.index_project)
        self.within_gallery = QCheckBox("Only pages shown in the gallery")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(96, 96))
        self.results.setGridSize(QSize(120, 140))
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setMovement(QListWidget.Movement.Static)
        self.results.setWordWrap(True)
        self.results.itemActivated.connect(self._open)
        self.results.itemClicked.connect(self._open)
        top = QHBoxLayout()
        top.addWidget(self.query, 1)
        top.addWidget(self.search_button)
        models = QHBoxLayout()
        models.addWidget(self.model_choice, 1)
        models.addWidget(self.index_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(models)
        layout.addWidget(self.within_gallery)
        layout.addWidget(self.summary)
        layout.addWidget(self.results, 1)

    @property
    def model_id(self) -> str:
        return str(self.model_choice.currentData())

    def _ready(self, tool: str) -> bool:
        from gui.model_hint import model_ready  # noqa: PLC0415

        return self.window.project is not None and model_ready(self.window, self.model_id, tool)

    def _within(self) -> set[int] | None:
        return set(self.window.gallery.visible_image_ids()) if self.within_gallery.isChecked() else None

    # -- actions ----------------------------------------------------------------------------

    def index_project(self) -> None:
        if not self._ready("Search"):
            return
        from engine.retrieval.indexer import index_project  # noqa: PLC0415

        project, service, model_id = self.window.project, self.window.model_service(), self.model_id

        def done(result: Any) -> None:
            failed = f"; {len(result.failed)} page(s) could not be read" if result.failed else ""
            self.summary.setText(f"Indexed with {self.model_choice.currentText()}: {result.embedded} page(s) now, "
                                 f"{result.already} already{failed}.")

        self.window.jobs.submit("Indexing for search",
                                lambda progress, cancel: index_project(project, service, model_id, progress=progress,
                                                                       cancel=cancel), done)

    def search(self) -> None:
        text = self.query.text().strip()
        if not text or not self._ready("Search"):
            return
        from engine.retrieval.search import search_text  # noqa: PLC0415

        project, service, model_id, within = self.window.project, self.window.model_service(), self.model_id, \
            self._within()
        self._run(f"Searching for “{text}”", lambda progress, cancel: search_text(
            project, service, model_id, text, k=RESULTS, within=within), f"“{text}”")

    def find_similar_page(self) -> None:
        image_id = self.window.labelling.image_id
        if image_id is None or not self._ready("Find similar"):
            return
        from engine.retrieval.search import similar_to_page  # noqa: PLC0415

        project, model_id, within = self.window.project, self.model_id, self._within()
        self._run("Finding similar pages", lambda progress, cancel: similar_to_page(
            project, model_id, image_id, k=RESULTS, within=within), "pages like this one")

    def find_similar_region(self) -> None:
        selected = self.window.labelling.selected()
        if len(selected) != 1:
            self.window.notifications.info("Select one annotation to find regions like it.")
            return
        if not self._ready("Find similar"):
            return
        from engine.retrieval.search import similar_to_region  # noqa: PLC0415

        project, service, model_id, within = self.window.project, self.window.model_service(), self.model_id, \
            self._within()
        self._run("Finding similar regions", lambda progress, cancel: similar_to_region(
            project, service, model_id, selected[0], k=RESULTS, within=within), "this region")

    def _run(self, title: str, work: Any, what: str) -> None:
        self.window.docks["search"].show()
        self.window.docks["search"].raise_()
        self.summary.setText(f"{title}…")

        def shown(hits: list[Hit]) -> None:
            self.show_results(hits, what)

        self.window.jobs.submit(title, work, shown, on_failure=self.summary.setText)

    # -- results -----------------------------------------------------------------------------

    def show_results(self, hits: list[Hit], what: str) -> None:
        self.results.clear()
        project = self.window.project
        model = self.window.gallery.model
        for hit in hits:
            row = model.row_for(hit.image_id)
            if row is None or project is None:
                continue
            label = row.title or row.display_name
            kind = f"region #{hit.annotation_id}" if hit.annotation_id is not None else ""
            item = QListWidgetItem(f"{hit.score:.2f} {kind}\n{label[:40]}")
            pixmap = QPixmap(str(thumbnail_path(project.thumbnail_dir, row.sha256, row.page_index)))
            if not pixmap.isNull():
                item.setIcon(QIcon(pixmap))
            item.setToolTip(f"{label}\nsimilarity {hit.score:.3f}")
            item.setData(HIT_ROLE, (hit.image_id, hit.annotation_id))
            self.results.addItem(item)
        self.summary.setText(f"{self.results.count()} result(s) for {what} — {self.model_choice.currentText()}")
        self.results_shown.emit()

    def _open(self, item: QListWidgetItem) -> None:
        image_id, annotation_id = item.data(HIT_ROLE)
        if self.window.gallery.select_image(image_id) and annotation_id is not None:
            self.window.labelling.views.canvas.select_annotations([annotation_id])
