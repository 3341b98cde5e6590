"""The "Find by description" tool: Grounding DINO boxes for the curator's phrases, as proposals.

Its options: the phrases (``phrase`` or ``phrase = Category``; a category that does not exist yet is
created), presets of common heritage phrases, box and text thresholds, scope (this page, the pages selected
in the gallery, the gallery's pages, the whole project), tiling, Run. Moving a threshold re-filters the
open page from the cached raw output at once, without the model. While the tool is active the canvas selects and moves as usual, so the
proposals can be reviewed in place. Phrases and thresholds are remembered per project.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSlider, QWidget

from gui.canvas.tools import SelectTool
from gui.tools.scope import pages_in_scope, scope_box, start_or_ask, submit_batch
from gui.tools.seam import PaletteEntry, ToolContext, ToolOffer

MODEL = "grounding-dino-tiny"
REFINE_MODEL = "sam-vit-b"
PRESETS = ("decorated initial", "coat of arms", "stamp", "marginal note", "woodcut", "signature", "seal",
           "printer's device", "catchword", "page number")


class FindTool(SelectTool):
    """Selecting and moving as usual: the tool's work is in its options bar."""

    name = "find"
    label = "Find"

    def status_hint(self) -> str:
        return ("Type what to look for (\"decorated initial; stamp\") and press Find; the boxes found are "
                "proposals to review. Shapes can still be selected here.")


def parse_phrases(text: str) -> list[tuple[str, str]]:
    """``"decorated initial = Initial; stamp"`` → [("decorated initial", "Initial"), ("stamp", "Stamp")]."""
    found = []
    for part in text.replace("\n", ";").split(";"):
        phrase, _, category = part.partition("=")
        phrase = phrase.strip()
        if phrase:
            found.append((phrase, category.strip() or phrase[:1].upper() + phrase[1:]))
    return found


class FindOptions(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("find-options")
        self.phrases = QLineEdit()
        self.phrases.setPlaceholderText("decorated initial = Initial; coat of arms")
        self.phrases.setToolTip("What to look for, separated by ';'. 'phrase = Category' puts its boxes in that "
                                "category (created if needed); without it, a category named like the phrase.")
        self.phrases.setMinimumWidth(150)
        self.phrases.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.presets = QComboBox()
        self.presets.addItem("+")
        self.presets.addItems(PRESETS)
        self.presets.setToolTip("Add a phrase curators often look for")
        self.presets.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.presets.setMinimumContentsLength(1)
        self.presets.view().setMinimumWidth(160)
        self.box = _slider(35, "Box threshold: boxes scoring below it are not proposed")
        self.text = _slider(25, "Text threshold: a box names a phrase when the phrase's words score above it")
        self.box_value, self.text_value = QLabel("0.35"), QLabel("0.25")
        self.scope = scope_box()
        self.tiling = QComboBox()
        for key, text in (("auto", "Tiles auto"), ("on", "Tiles on"), ("fine", "Fine tiles (slow)"),
                          ("off", "Tiles off")):
            self.tiling.addItem(text, key)
        self.tiling.setToolTip("Large pages are also read in a few large parts of what is on them (not blank margins "
                               "or the scanner's bed), closer than the whole page, so that small stamps and initials "
                               "are not lost (auto: when the page is large); fine tiles read every part at the page's "
                               "own scale, for the smallest marks (many times slower)")
        self.refine = QCheckBox("SAM masks")
        self.refine.setToolTip("Refine every new box into a mask with SAM (ViT-B), encoding each page once")
        self.run = QPushButton("Find")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        for widget in (QLabel("Find:"), self.phrases, self.presets, QLabel("Box"), self.box, self.box_value,
                       QLabel("Text"), self.text, self.text_value, self.scope, self.tiling, self.refine, self.run):
            layout.addWidget(widget)
        self.presets.activated.connect(self._add_preset)
        self.box.valueChanged.connect(lambda v: self.box_value.setText(f"{v / 100:.2f}"))
        self.text.valueChanged.connect(lambda v: self.text_value.setText(f"{v / 100:.2f}"))

    def _add_preset(self, index: int) -> None:
        if index > 0:
            current = self.phrases.text().strip().rstrip(";")
            self.phrases.setText(f"{current}; {PRESETS[index - 1]}" if current else PRESETS[index - 1])
        self.presets.setCurrentIndex(0)


def _slider(value: int, tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(5, 95)
    slider.setValue(value)
    slider.setFixedWidth(64)
    slider.setToolTip(tip)
    return slider


class FindController:
    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.tool = FindTool(context.canvas.scene, lambda geometry: None)
        context.canvas.add_tool(self.tool)
        self.options = FindOptions()
        self.options.run.clicked.connect(self.run)
        self.options.phrases.returnPressed.connect(self.run)
        self._refilter_soon = QTimer()
        self._refilter_soon.setSingleShot(True)
        self._refilter_soon.setInterval(150)  # a slider drag re-filters once it pauses
        self._refilter_soon.timeout.connect(self.refilter_page)
        self.options.box.valueChanged.connect(lambda _v: self._refilter_soon.start())
        self.options.text.valueChanged.connect(lambda _v: self._refilter_soon.start())
        self.running = False
        context.project_opened.connect(self._restore)

    # -- remembered per project --------------------------------------------------------

    def _restore(self) -> None:
        project = self.context.project()
        if project is None:
            return
        saved = self.context.settings.project_value(project.folder, "find/phrases")
        self.options.phrases.setText(str(saved or ""))

    def _remember(self) -> None:
        project = self.context.project()
        if project is not None:
            self.context.settings.set_project_value(project.folder, "find/phrases", self.options.phrases.text())

    # -- running -------------------------------------------------------------------------

    def _options(self) -> Any:
        from engine.detection.detect import DetectOptions  # noqa: PLC0415 - torch loads when the tool is used
        from engine.detection.tiling import Tiling  # noqa: PLC0415

        return DetectOptions(self.options.box.value() / 100, self.options.text.value() / 100,
                             Tiling(self.options.tiling.currentData()))

    def _pages(self) -> list[int]:
        return pages_in_scope(self.context, self.options.scope.currentData())

    def run(self) -> None:
        project = self.context.project()
        wanted = parse_phrases(self.options.phrases.text())
        if project is None or self.running:
            return
        if not wanted:
            self.context.notifications.info("Type what to look for, such as “decorated initial”, then Find.")
            return
        pages = self._pages()
        if not pages:
            self.context.notifications.info("There is no page to look at in this scope.")
            return
        if not self.context.model_ready(MODEL, "Find by description"):
            return
        refine_with = REFINE_MODEL if self.options.refine.isChecked() else None
        if refine_with is not None and not self.context.model_ready(refine_with, "Refining boxes with SAM"):
            return
        self._remember()
        prompts = self._prompts(project, wanted)
        from engine.batch.tasks.detect import DetectTask  # noqa: PLC0415

        service = self.context.models()
        task = DetectTask(MODEL, prompts, self._options(), self.context.curator(),
                          refine=self._segmenter(project, service, refine_with))

        def start(cluster: Any, took: str) -> None:
            if self.running or project is not self.context.project():
                return  # a second answer to the question, or another project by now
            self.running = True
            self.options.run.setEnabled(False)
            submit_batch(self.context, f"Finding {', '.join(p for p, _ in wanted)} on {len(pages)} page(s)", task,
                         service, pages, cluster, took, lambda report: self._done(project, report), self._ended)

        # SAM refines here, so a refining run stays here
        start_or_ask(self.context, "Find by description", task, service, pages, start,
                     cluster_allowed=refine_with is None)

    def _segmenter(self, project: Any, service: Any, model_id: str | None) -> Any:
        if model_id is None:
            return None
        from engine.segmentation.embeddings import EmbeddingCache  # noqa: PLC0415
        from engine.segmentation.segmenter import Segmenter  # noqa: PLC0415

        disk_bytes = int(self.context.settings.sam_cache_gb * 1024**3)  # the bound the SAM tool keeps too
        return Segmenter(service, EmbeddingCache.of_project(project.folder, disk_bytes=disk_bytes), model_id)

    def _prompts(self, project: Any, wanted: list[tuple[str, str]]) -> list[Any]:
        from engine.categories import add_category  # noqa: PLC0415
        from engine.detection.detect import PhrasePrompt  # noqa: PLC0415

        # The categories the window already holds: no count over the project on every slider move.
        known = {c.name.casefold(): c.id for c in self.context.labelling.categories()}
        prompts = []
        for phrase, category in wanted:
            if category.casefold() not in known:
                known[category.casefold()] = add_category(project, category).id
                self.context.labelling.reload_categories()
            prompts.append(PhrasePrompt(phrase, known[category.casefold()]))
        return prompts

    def _done(self, project: Any, report: Any) -> None:
        if project is not self.context.project():
            return
        self._changed()
        self.context.notifications.result(f"Find by description: {report.summary}.")

    def _ended(self) -> None:
        self.running = False
        self.options.run.setEnabled(True)

    def refilter_page(self) -> None:
        """The open page's proposals at the thresholds now set, from the cached raw output (no model)."""
        project, image_id = self.context.project(), self.context.labelling.image_id
        wanted = parse_phrases(self.options.phrases.text())
        if project is None or image_id is None or not wanted or self.running:
            return
        from engine.detection.detect import apply_thresholds  # noqa: PLC0415

        prompts = self._prompts(project, wanted)
        options, service, creator = self._options(), self.context.models(), self.context.curator()
        self.context.jobs.submit(
            "Re-filtering the page", lambda progress, cancel: apply_thresholds(
                project, service, MODEL, image_id, prompts, options, creator=creator),
            lambda result: self._refiltered(project, result), visible=False)

    def _refiltered(self, project: Any, result: tuple[int, int] | None) -> None:
        if project is self.context.project() and result is not None and any(result):
            self._changed()
            self.context.show_status(f"{result[0]} proposal(s) added, {result[1]} removed at the new thresholds", 3000)

    def _changed(self) -> None:
        self.context.announce_annotations_changed()


class FindPlugin:
    name = "find"

    def __init__(self, context: ToolContext) -> None:
        self.controller = FindController(context)

    def offer(self) -> ToolOffer:
        return ToolOffer(palette=[PaletteEntry(self.controller.tool, "Find by &Description", "D", "find")],
                         options=self.controller.options)

    def project_closed(self) -> None:
        self.controller.running = False


def create(context: ToolContext) -> FindPlugin:
    return FindPlugin(context)
