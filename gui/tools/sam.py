"""The SAM tool: encodes the open page (and the next ones) in the background, decodes clicks, saves masks.

Encoding runs as a visible job that says what it costs ("about 40 s on the
CPU, once per page"); decoding a click runs as an invisible job, only the
newest prompt is decoded when clicks come faster than masks. Nothing here
blocks the UI thread.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar

from engine.annotations import Geometry
from engine.jobs import CancelToken, ProgressCallback
from engine.models.catalogue import CATALOGUE, suggested_segmentation_model
from engine.models.runtime import likely_gpu
from engine.segmentation.prompts import Prompt
from gui.canvas.sam_tool import SamTool
from gui.gallery import caption
from gui.tools.scope import on_cluster
from gui.tools.seam import PaletteEntry, ToolContext, ToolOffer

if TYPE_CHECKING:  # the segmentation engine (torch, OpenCV) loads when SAM is first used
    from engine.segmentation.embeddings import Embedding
    from engine.segmentation.segmenter import PageRef, Segmentation, Segmenter

SAM_MODELS = [spec for spec in CATALOGUE if spec.task == "segmentation"]
PREFETCH_PAGES = 2


class SamController(QObject):
    mask_shown = Signal()  # a decoded mask is on the canvas (tests and screenshots wait for it)
    page_ready = Signal()  # the open page's embedding is ready

    def __init__(self, context: ToolContext) -> None:
        super().__init__(context.parent)
        self.context = context
        self.tool = SamTool(context.canvas.scene, self._prompt_changed, self.accept, self.next_candidate)
        context.canvas.add_tool(self.tool)
        self.model_choice = QComboBox()
        self.model_choice.setToolTip("The SAM model: SAM 2.1 tiny prepares a page in seconds on a CPU; "
                                     "ViT-B/L/H are slower to prepare (best with a GPU), H the most precise")
        for spec in SAM_MODELS:
            self.model_choice.addItem(spec.name, spec.id)
        self._show_model(context.settings.sam_model or suggested_segmentation_model(
            likely_gpu(context.settings.model_device)))
        self.model_choice.currentIndexChanged.connect(self._model_chosen)
        self._segmenters: dict[tuple[str, str], Segmenter] = {}
        self._page: PageRef | None = None
        self.embedding: Embedding | None = None
        self.segmentation: Segmentation | None = None
        self._decoding = False
        self._pending: Prompt | None = None  # the newest prompt not yet decoded
        self._encode_job: Any = None
        self._prefetch_job: Any = None
        self.refining: Any = None  # the annotation whose mask clicks refine (selected when SAM was chosen)
        self._refine_previous: Any = None  # its [256, 256] logits, once the page is ready
        context.canvas.tool_changed.connect(self._tool_changed)
        context.pages.image_selected.connect(lambda _image_id: self._page_changed())

    @property
    def model_id(self) -> str:
        return str(self.model_choice.currentData())

    @property
    def active(self) -> bool:
        return self.context.canvas.tool is self.tool

    # -- the segmenter for the open project and chosen model ------------------------------

    def segmenter(self) -> Segmenter | None:
        project = self.context.project()
        if project is None:
            return None
        key = (str(project.folder), self.model_id)
        if key not in self._segmenters:
            from engine.segmentation.embeddings import EmbeddingCache  # noqa: PLC0415
            from engine.segmentation.segmenter import Segmenter  # noqa: PLC0415

            cache = EmbeddingCache.of_project(project.folder,
                                              disk_bytes=int(self.context.settings.sam_cache_gb * 1024**3))
            service = self.context.models()
            self._segmenters[key] = Segmenter(service, cache, self.model_id)
            self.context.jobs.submit("Tidying the SAM cache", lambda progress, cancel: _tidy(project, cache, service),
                                    visible=False)
        return self._segmenters[key]

    def _model_ready(self) -> bool:
        return self.context.model_ready(self.model_id, "The SAM tool")

    def _model_chosen(self) -> None:
        self.context.settings.sam_model = self.model_id
        self._reset_page()
        if self.active:
            self._prepare_page()

    # -- pages ------------------------------------------------------------------------------

    def _show_model(self, model_id: str) -> None:
        self.model_choice.blockSignals(True)
        self.model_choice.setCurrentIndex(max(0, self.model_choice.findData(model_id)))
        self.model_choice.blockSignals(False)

    def _settle_first_model(self) -> None:
        """Before any choice: the suggested model, unless the curator installed another SAM model only."""
        if not self.context.settings.sam_model:
            installed = {model.id for model in self.context.models().store.installed()}
            self._show_model(suggested_segmentation_model(likely_gpu(self.context.settings.model_device), installed))

    def _tool_changed(self, name: str) -> None:
        self._choose_refining(name == self.tool.name)
        if name == self.tool.name:
            self._settle_first_model()
            self._prepare_page()

    def _page_changed(self) -> None:
        self._choose_refining(False)
        self._reset_page()
        if self.active:
            self._prepare_page()

    def _reset_page(self) -> None:
        self.tool.clear()
        self.embedding = None
        self.segmentation = None
        self._pending = None
        if self._encode_job is not None:
            self._encode_job.cancel()
            self._encode_job = None

    def project_closed(self) -> None:
        self._reset_page()
        self._page = None
        if self._prefetch_job is not None:
            self._prefetch_job.cancel()
            self._prefetch_job = None
        self._segmenters.clear()

    def _current_page(self) -> PageRef | None:
        from engine.segmentation.segmenter import PageRef  # noqa: PLC0415

        image_id = self.context.labelling.image_id
        row = self.context.pages.model.row_for(image_id) if image_id is not None else None
        return PageRef.of(row) if row is not None and not row.missing else None

    def _prepare_page(self) -> None:
        page, segmenter = self._current_page(), self.segmenter()
        if page is None or segmenter is None or not self._model_ready():
            return
        if self.embedding is not None and self._page == page:
            return
        self._page = page
        self.tool.waiting = "Preparing this page for SAM…"
        self.context.show_status(self.tool.waiting, 0)
        project = self.context.project()
        assert project is not None

        def encode(progress: ProgressCallback, cancel: CancelToken) -> Embedding:
            from engine.segmentation.precompute import precompute_embeddings  # noqa: PLC0415

            precompute_embeddings(project, segmenter, [page], progress=progress, cancel=cancel)
            segmenter.decoder()  # the first click must not wait for the decoder's export
            return segmenter.embedding(page)

        self._encode_job = self.context.jobs.submit("Preparing the page for SAM", encode,
                                                   lambda embedding: self._embedding_ready(page, embedding))

    def _choose_refining(self, active: bool) -> None:
        """With one shape selected as SAM is chosen, clicks refine that shape rather than start a new one."""
        labelling = self.context.labelling
        selected = labelling.selected() if active else []
        self.refining = next((r for r in labelling.records() if len(selected) == 1 and r.id == selected[0]), None)
        self._refine_previous = None
        if self.refining is not None:
            self.context.show_status(self._hint(), 10_000)
            if self.embedding is not None:
                self._prepare_refining(self.embedding)

    def _hint(self) -> str:
        if self.refining is None:
            return self.tool.status_hint()
        return (f"Refining #{self.refining.id}: click to add (right-click to take away); Enter saves the new "
                "outline, Esc leaves it as it was")

    def _prepare_refining(self, embedding: Embedding) -> None:
        record = self.refining
        frame = embedding.frame

        def previous(progress: ProgressCallback, cancel: CancelToken) -> Any:
            from engine.mask_editing import shape_window  # noqa: PLC0415

            window, left, top = shape_window(record, frame.page_width, frame.page_height)
            return frame.low_res_from_window(window, left, top)

        def ready(logits: Any) -> None:
            if self.refining is record:
                self._refine_previous = logits

        self.context.jobs.submit("Preparing the shape for refining", previous, ready, visible=False)

    def _embedding_ready(self, page: PageRef, embedding: Embedding) -> None:
        if page != self._page:
            return  # the curator moved on
        self._encode_job = None
        self.embedding = embedding
        if self.refining is not None:
            self._prepare_refining(embedding)
        self.tool.waiting = ""
        self.context.show_status(self._hint(), 5000)
        self.page_ready.emit()
        if self._pending is not None:
            self._decode(self._pending)
        self._prefetch_next_pages()

    def _prefetch_next_pages(self) -> None:
        segmenter, project = self.segmenter(), self.context.project()
        if segmenter is None or project is None or self._page is None:
            return
        from engine.segmentation.segmenter import PageRef  # noqa: PLC0415

        ids = self.context.pages.visible_image_ids()
        if self._page.image_id not in ids:
            return
        start = ids.index(self._page.image_id) + 1
        rows = [self.context.pages.model.row_for(image_id) for image_id in ids[start:start + PREFETCH_PAGES]]
        pages = [PageRef.of(row) for row in rows if row is not None and not row.missing]
        if not pages or all(segmenter.has_embedding(page) for page in pages):
            return
        if self._prefetch_job is not None:
            self._prefetch_job.cancel()
        from engine.segmentation.precompute import precompute_embeddings  # noqa: PLC0415

        self._prefetch_job = self.context.jobs.submit(
            "Preparing the next pages for SAM",
            lambda progress, cancel: precompute_embeddings(project, segmenter, pages, progress=progress,
                                                           cancel=cancel),
            announce_cancel=False)

    # -- prompts ----------------------------------------------------------------------------

    def _prompt_changed(self, prompt: Prompt | None) -> None:
        if prompt is None:
            self.segmentation = None
            self._pending = None
            self.tool.show_mask(None, (0, 0))
            self.context.show_status(self._hint(), 5000)  # the preview's keys no longer apply
            return
        if self.embedding is None:
            self._pending = prompt
            self.context.show_status("The mask will appear when the page is ready for SAM…", 0)
            return
        # All points are sent each time, without the previous mask (as SAM's own demo does): the
        # page-prepared fast path then serves every click.
        self._decode(prompt)

    def _decode(self, prompt: Prompt) -> None:
        if self._decoding:
            self._pending = prompt  # only the newest prompt matters
            return
        segmenter, embedding = self.segmenter(), self.embedding
        if segmenter is None or embedding is None:
            return
        self._decoding = True
        self._pending = None
        if self._refine_previous is not None:
            prompt = dataclasses.replace(prompt, previous=self._refine_previous)
        self.context.jobs.submit("Decoding the mask",
                                lambda progress, cancel: segmenter.segment(embedding, prompt),
                                self._decoded, visible=False).ended.connect(self._decode_ended)

    def _decoded(self, segmentation: Segmentation) -> None:
        if segmentation.embedding is not self.embedding or not (self.tool.points or self.tool.box):
            return  # another page, or the prompt was cleared meanwhile
        self._show(segmentation)

    def _decode_ended(self) -> None:
        self._decoding = False
        if self._pending is not None and self.embedding is not None:
            self._decode(self._pending)

    def _show(self, segmentation: Segmentation) -> None:
        self.segmentation = segmentation
        frame = segmentation.embedding.frame
        self.tool.show_mask(segmentation.preview_mask(), (frame.page_width, frame.page_height))
        confidence = min(1.0, max(0.0, segmentation.score))
        # It stays while the preview does: the preview is kept only if the curator knows how to keep it.
        self.context.show_status(f"SAM's confidence: {confidence:.0%} · Enter keeps this mask · Esc drops it · Tab "
                                 "shows another candidate", 0)
        self.mask_shown.emit()

    def next_candidate(self) -> None:
        current = self.segmentation
        if current is None:
            return
        options = current.alternatives()
        following = options[(options.index(current.index) + 1) % len(options)] if current.index in options else 0
        self._show(current.choose(following))

    # -- saving ------------------------------------------------------------------------------

    def accept(self) -> None:
        segmentation = self.segmentation
        if segmentation is None:
            return
        from engine.segmentation.annotate import geometry_of, provenance_of  # noqa: PLC0415

        origin = provenance_of(segmentation)

        def trace(progress: ProgressCallback, cancel: CancelToken) -> Geometry:
            return geometry_of(segmentation)

        refined = self.refining

        def traced(geometry: Geometry) -> None:
            if geometry.rle is None or not geometry.polygons:
                self.context.notifications.info("The mask is empty: click inside what you want to outline.")
                return
            if refined is not None:
                self.context.labelling.reshape(refined.id, geometry)
            else:
                self.context.labelling.add_shape(geometry, origin)

        self.refining, self._refine_previous = None, None  # the next object starts afresh
        self.tool.clear()
        self.segmentation = None
        self.context.show_status(self._hint(), 5000)
        self.context.jobs.submit("Saving the mask", trace, traced)

    # -- whole pages and projects ------------------------------------------------------------

    def segment_everything(self) -> None:
        page, segmenter, project = self._current_page(), self.segmenter(), self.context.project()
        labelling = self.context.labelling
        category = labelling.current_category()
        if page is None or segmenter is None or project is None or not self._model_ready():
            return
        if category is None:
            self.context.notifications.info("Choose the category for the proposals first.")
            return
        from engine.segmentation.automatic import segment_everything  # noqa: PLC0415

        context = labelling.ctx
        assert context is not None
        row = self.context.pages.model.row_for(page.image_id)
        page_name = caption(row) if row is not None else f"page #{page.image_id}"

        def done(records: list[Any]) -> None:
            context.events.annotations_changed.emit(page.image_id)
            found = f"SAM proposed {len(records)} region(s) as “{category.name}” on {page_name}"
            if labelling.image_id == page.image_id:
                self.context.notifications.info(f"{found}; review them in the Annotations panel.")
                return
            # The curator has moved on: the message says which page, and takes them back to it.
            self.context.notifications.info(f"{found}.", [("Go to page", lambda: self.context.go_to_page(
                page.image_id))])

        self.context.jobs.submit(
            f"Segmenting everything on {page_name}",
            lambda progress, cancel: segment_everything(project, segmenter, page, category_id=category.id,
                                                        creator=context.curator, session_id=context.session_id,
                                                        progress=progress, cancel=cancel),
            done)

    def precompute_project(self) -> None:
        segmenter, project = self.segmenter(), self.context.project()
        if segmenter is None or project is None or not self._model_ready():
            return
        from engine.batch.runner import run_batch  # noqa: PLC0415
        from engine.batch.tasks.prepare_sam import PrepareSamTask  # noqa: PLC0415
        from engine.inventory import list_images  # noqa: PLC0415

        cluster = self.context.cluster_for(self.context.pages.model.rowCount())
        task = PrepareSamTask(segmenter.model_id, segmenter=segmenter)

        def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
            pages = [row.id for row in list_images(project) if not row.missing and not row.changed]
            return run_batch(project, segmenter.service, task, pages, cluster, progress=progress, cancel=cancel)

        def done(report: Any) -> None:
            failed = f"; {len(report.failed)} could not be read" if report.failed else ""
            self.context.notifications.info(
                f"SAM ({self.model_choice.currentText()}) is ready on every page of {project.name}: "
                f"{report.summary}{failed}.")

        self.context.jobs.submit(f"Precomputing SAM embeddings{on_cluster(cluster)}", run, done, background=True)


class SamPlugin:
    """Click-to-mask on the canvas, Segment Everything, and preparing every page ahead."""

    name = "sam"

    def __init__(self, context: ToolContext) -> None:
        self.controller = SamController(context)
        self._parent = context.parent
        self.options: QToolBar | None = None

    def offer(self) -> ToolOffer:
        controller = self.controller
        everything = QAction("Segment &Everything on This Page", self._parent)
        everything.setToolTip("SAM proposes every region it finds on this page, for you to review")
        everything.triggered.connect(lambda checked=False: controller.segment_everything())
        precompute = QAction("Prepare SAM for &All Pages", self._parent)
        precompute.setToolTip("Encode every page now (slow on a CPU), so that SAM answers at once later")
        precompute.triggered.connect(lambda checked=False: controller.precompute_project())
        options = QToolBar("SAM options")
        options.setObjectName("toolbar-sam")
        options.addWidget(QLabel(" Model: "))
        options.addWidget(controller.model_choice)
        options.addSeparator()
        options.addAction(everything)
        options.addAction(precompute)
        self.options = options
        return ToolOffer(palette=[PaletteEntry(controller.tool, "S&AM (click to mask)", "S", "sam")], options=options,
                         menu=[("sam-everything", everything), ("sam-precompute", precompute)])

    def project_closed(self) -> None:
        self.controller.project_closed()


def create(context: ToolContext) -> SamPlugin:
    return SamPlugin(context)


def _tidy(project: Any, cache: Any, service: Any) -> int:
    from engine.segmentation.precompute import prune_stale_embeddings  # noqa: PLC0415

    return prune_stale_embeddings(project, cache, service.store) + cache.evict_beyond_budget()
