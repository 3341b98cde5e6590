"""The Search tool: find pages by words, like a page, or like a region; index the project; tag pages.

Searching embeds the words with the chosen CLIP model off the UI thread; the
results grid shows thumbnails with their similarity, and a click opens the
page (the region's page, with the region selected). "Only pages shown in the
gallery" combines a search with the gallery's filters. A line under the model
says how much of the project the model's index covers, so a curator knows
when a search cannot yet see every page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from engine.imaging.thumbnails import thumbnail_path
from engine.models.catalogue import CATALOGUE
from gui.file_actions import IMAGE_FILTER
from gui.tools.scope import on_cluster
from gui.tools.seam import DockEntry, ToolContext, ToolOffer

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.models.service import ModelService
    from engine.project import Project
    from engine.retrieval.search import Hit
    from engine.retrieval.vectors import Coverage
    from gui.tagging_dialog import TaggingDialog

CLIP_MODELS = [spec for spec in CATALOGUE if spec.family == "open-clip"]
RESULTS = 60
HIT_ROLE = Qt.ItemDataRole.UserRole


def describe_coverage(coverage: Coverage, model_name: str) -> tuple[str, bool]:
    """The coverage line's text, and whether searches miss pages (shown as a warning)."""
    regions = f" and {coverage.regions_indexed} region(s)" if coverage.regions_indexed else ""
    if coverage.pages == 0:
        return "The project has no pages yet.", False
    if coverage.pages_indexed == 0:
        return (f"None of the {coverage.pages} page(s) is indexed with {model_name} yet: “Index for search” "
                "prepares them (in the background)."), True
    if coverage.complete:
        return f"All {coverage.pages} page(s){regions} indexed with {model_name}.", False
    missing = coverage.pages - coverage.pages_indexed
    return (f"{coverage.pages_indexed} of {coverage.pages} page(s){regions} indexed with {model_name}: searches "
            f"cannot see the other {missing} until you index them."), True


class SearchPanel(QWidget):
    results_shown = Signal()

    def __init__(self, context: ToolContext) -> None:
        super().__init__(context.parent)
        self.context = context
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the collection, e.g. 'a coat of arms', 'Wappen', 'carte'")
        self.query.setClearButtonEnabled(True)
        self.query.returnPressed.connect(self.search)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.example_button = QPushButton("By example…")
        self.example_button.setToolTip("Find pages like an image file: a photograph of an object, a page from "
                                       "another collection")
        self.example_button.clicked.connect(self.ask_example_image)
        self.model_choice = QComboBox()
        for spec in CLIP_MODELS:
            self.model_choice.addItem(spec.name, spec.id)
        self.model_choice.setToolTip("The CLIP model; choose the multilingual one for German, Latin, French…")
        self.index_button = QPushButton("Index for search")
        self.index_button.setToolTip("Embed every page not yet indexed with this model (runs in the background)")
        self.index_button.clicked.connect(self.index_project)
        self.tagging_dialog: TaggingDialog | None = None
        self.tag_button = QPushButton("Tag pages…")
        self.tag_button.setToolTip("CLIP proposes one of your categories for each page, for you to review")
        self.tag_button.clicked.connect(self.tag_pages)
        self.coverage = QLabel("")
        self.coverage.setWordWrap(True)
        self.model_choice.currentIndexChanged.connect(lambda _: self.refresh_coverage())
        context.project_opened.connect(self.refresh_coverage)
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
        # Narrow rows, so that the dock never squeezes the page being labelled.
        self.model_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_choice.setMinimumContentsLength(16)
        top = QHBoxLayout()
        top.addWidget(self.query, 1)
        top.addWidget(self.search_button)
        actions = QHBoxLayout()
        for button in (self.example_button, self.index_button, self.tag_button):
            actions.addWidget(button)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.model_choice)
        layout.addLayout(actions)
        layout.addWidget(self.coverage)
        layout.addWidget(self.within_gallery)
        layout.addWidget(self.summary)
        layout.addWidget(self.results, 1)

    @property
    def model_id(self) -> str:
        return str(self.model_choice.currentData())

    def _ready(self, tool: str) -> bool:
        return self.context.project() is not None and self.context.model_ready(self.model_id, tool)

    def _within(self) -> set[int] | None:
        return set(self.context.pages.visible_image_ids()) if self.within_gallery.isChecked() else None

    def bring_forward(self) -> None:
        """Show the panel's dock (it may be closed, or a tab behind the gallery)."""
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()

    def focus_query(self) -> None:
        self.bring_forward()
        self.query.setFocus()
        self.query.selectAll()

    def reset(self) -> None:
        """Forget the closed project's results (their ids mean nothing in the next project)."""
        self.results.clear()
        self.summary.setText("")
        self.coverage.setText("")

    # -- actions ----------------------------------------------------------------------------

    def refresh_coverage(self) -> None:
        project, model_id, name = self.context.project(), self.model_id, self.model_choice.currentText()
        if project is None:
            self.coverage.setText("")
            return
        from engine.retrieval.vectors import index_coverage  # noqa: PLC0415

        def shown(coverage: Coverage) -> None:
            if project is not self.context.project() or model_id != self.model_id:
                return  # answered too late: another project or model is shown now
            text, incomplete = describe_coverage(coverage, name)
            self.coverage.setText(text)
            self.coverage.setStyleSheet("color: #B26A00" if incomplete else "")

        self.context.jobs.submit("Counting indexed pages", lambda progress, cancel: index_coverage(project, model_id),
                                shown, visible=False)

    def index_project(self) -> None:
        if not self._ready("Search"):
            return
        from engine.batch.runner import run_batch  # noqa: PLC0415
        from engine.batch.tasks.index import IndexTask  # noqa: PLC0415

        project, service, model_id = self.context.project(), self.context.models(), self.model_id
        cluster = self.context.cluster_for(self.context.pages.model.rowCount())

        def done(report: Any) -> None:
            self.summary.setText(f"Indexed with {self.model_choice.currentText()}: {report.summary}.")
            self.refresh_coverage()

        def run(progress: Any, cancel: Any) -> Any:
            from engine.inventory import list_images  # noqa: PLC0415

            pages = [row.id for row in list_images(project) if not row.missing and not row.changed]
            return run_batch(project, service, IndexTask(model_id), pages, cluster, progress=progress, cancel=cancel)

        self.context.jobs.submit(f"Indexing for search{on_cluster(cluster)}", run, done,
                                 on_failure=lambda message: self.refresh_coverage(), background=True)

    def tag_pages(self) -> None:
        """Ask for the categories' descriptions, then index what is missing and propose tags, in one job."""
        project, context = self.context.project(), self.context.labelling.ctx
        if project is None or context is None or not self._ready("Tag pages"):
            return
        from gui.tagging_dialog import TaggingDialog  # noqa: PLC0415

        categories = self.context.labelling.categories()
        if not categories:
            self.context.notifications.info("Add the categories to tag with first (Categories panel).")
            return
        dialog = TaggingDialog(categories, self.context.settings.tagging_descriptions(project.folder),
                               model_name=self.model_choice.currentText(),
                               all_pages=self.context.pages.model.rowCount(),
                               gallery_pages=self.context.pages.visible_image_ids(), parent=self.context.parent)
        dialog.accepted.connect(lambda: self._start_tagging(dialog))
        dialog.finished.connect(dialog.deleteLater)
        self.tagging_dialog = dialog
        dialog.open()

    def _start_tagging(self, dialog: TaggingDialog) -> None:
        project, context = self.context.project(), self.context.labelling.ctx
        if project is None or context is None:
            return
        from engine.retrieval.indexer import index_project  # noqa: PLC0415
        from engine.retrieval.tagging import tag_pages  # noqa: PLC0415

        self.context.settings.set_tagging_descriptions(project.folder, dialog.descriptions())
        request, service, model_id = dialog.request(), self.context.models(), self.model_id

        def work(progress: Any, cancel: Any) -> list[Any]:
            index_project(project, service, model_id, progress=progress, cancel=cancel)
            return tag_pages(project, service, model_id, request.prompts, creator=context.curator,
                             min_probability=request.min_probability, session_id=context.session_id,
                             within=request.within, others=request.others)

        def done(records: list[Any]) -> None:
            context.events.annotations_changed.emit(-1)
            self.refresh_coverage()
            pages = "page" if len(records) == 1 else "pages"
            self.context.notifications.info(
                f"CLIP proposed tags for {len(records)} {pages}; review them with the gallery's “Has proposals” "
                "filter." if records else
                f"CLIP proposed no new tags: no page matched a category with at least "
                f"{request.min_probability:.0%} confidence, or its tag had been proposed before.")

        self.context.jobs.submit("Tagging pages with CLIP", work, done, background=True)

    def search(self) -> None:
        text = self.query.text().strip()
        if not text or not self._ready("Search"):
            return
        from engine.retrieval.search import search_text  # noqa: PLC0415

        self._run(f"Searching for “{text}”", f"“{text}”", lambda project, service, model_id, within:
                  search_text(project, service, model_id, text, k=RESULTS, within=within, pages_only=False))

    def find_similar_page(self, image_id: int | None = None) -> None:
        image_id = image_id if image_id is not None else self.context.labelling.image_id
        if image_id is None or not self._ready("Find similar"):
            return
        from engine.retrieval.search import similar_to_page  # noqa: PLC0415

        self._run("Finding similar pages", "pages like this one", lambda project, _, model_id, within:
                  similar_to_page(project, model_id, image_id, k=RESULTS, within=within))

    def ask_example_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Find pages like this image", "", IMAGE_FILTER)
        if path:
            self.find_similar_to_file(Path(path))

    def find_similar_to_file(self, path: Path) -> None:
        if not self._ready("Search by example"):
            return
        from engine.retrieval.search import similar_to_file  # noqa: PLC0415

        self._run(f"Finding pages like {path.name}", f"pages like {path.name}",
                  lambda project, service, model_id, within: similar_to_file(project, service, model_id, path,
                                                                              k=RESULTS, within=within))

    def find_similar_region(self, annotation_id: int | None = None) -> None:
        selected = [annotation_id] if annotation_id is not None else self.context.labelling.selected()
        if len(selected) != 1:
            self.context.notifications.info("Select one annotation to find regions like it.")
            return
        if not self._ready("Find similar"):
            return
        from engine.retrieval.search import similar_to_region  # noqa: PLC0415

        self._run("Finding similar regions", "this region", lambda project, service, model_id, within:
                  similar_to_region(project, service, model_id, selected[0], k=RESULTS, within=within))

    def _run(self, title: str, what: str, query: Callable[[Project, ModelService, str, set[int] | None], list[Hit]],
             ) -> None:
        """Run ``query`` with this panel's project, model and filter as a job, and show its hits."""
        project, service, model_id, within = self.context.project(), self.context.models(), self.model_id, \
            self._within()

        def work(progress: Any, cancel: Any) -> list[Hit]:
            return query(project, service, model_id, within)

        self.bring_forward()
        self.summary.setText(f"{title}…")

        def shown(hits: list[Hit]) -> None:
            self.show_results(hits, what)

        self.context.jobs.submit(title, work, shown, on_failure=self.summary.setText)

    # -- results -----------------------------------------------------------------------------

    def show_results(self, hits: list[Hit], what: str) -> None:
        self.results.clear()
        project = self.context.project()
        model = self.context.pages.model
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
        if self.context.pages.select_image(image_id) and annotation_id is not None:
            self.context.labelling.select_annotations([annotation_id])


class SearchPlugin:
    """Search the collection by words, by example or by region; index it; tag pages. Lives in its own dock."""

    name = "search"

    def __init__(self, context: ToolContext) -> None:
        self.panel = SearchPanel(context)
        self._parent = context.parent
        context.pages.find_similar_requested.connect(self.panel.find_similar_page)
        context.annotations.find_similar_requested.connect(self.panel.find_similar_region)

    def offer(self) -> ToolOffer:
        panel = self.panel
        menu: list[tuple[str, QAction] | None] = []
        for name, text, slot, keys, tip in (
                ("search", "Searc&h the Collection…", panel.focus_query, "Ctrl+F", ""),
                ("similar-page", "Find Pages &Like This One", panel.find_similar_page, "Ctrl+Shift+F", ""),
                ("similar-region", "Find Regions Like the &Selected One", panel.find_similar_region, "", ""),
                ("similar-file", "Find Pages Like an Image &File…", panel.ask_example_image, "", ""),
                ("index", "&Index the Project for Search", panel.index_project, "", ""),
                ("tag-pages", "&Tag Pages by Category with CLIP…", panel.tag_pages, "",
                 "CLIP proposes one of your categories for each page, for you to review")):
            action = QAction(text, self._parent)
            if keys:
                action.setShortcut(QKeySequence(keys))
            if tip:
                action.setToolTip(tip)
            action.triggered.connect(lambda checked=False, slot=slot: slot())
            menu.append((name, action))
        return ToolOffer(menu=menu, docks=[DockEntry("search", "Search", panel, Qt.DockWidgetArea.LeftDockWidgetArea,
                                                     tab_with="gallery")])

    def project_closed(self) -> None:
        self.panel.reset()


def create(context: ToolContext) -> SearchPlugin:
    return SearchPlugin(context)
