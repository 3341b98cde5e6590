"""The "Find text" tool: Hi-SAM's strokes, paragraphs, lines and words as proposals, and the Text dock.

Options: the levels to find, the pages (this page, the selected pages, the gallery's, all), how large
pages are read (in windows at their own scale, or whole and shrunk: faster, loses small print), Find
Text. The run is one background job over the pages, resumable: pages already done are skipped. The
Text dock shows the page's text as a tree, where transcriptions are typed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from gui.canvas.tools import SelectTool
from gui.tools.scope import pages_in_scope, scope_box, start_or_ask, submit_batch
from gui.tools.seam import DockEntry, PaletteEntry, ToolContext, ToolOffer
from gui.tools.text_tree import TextTreePanel

MODEL = "hi-sam-vit-b"
LEVEL_BOXES = (("strokes", "Strokes", False), ("paragraphs", "Paragraphs", True), ("lines", "Lines", True),
               ("words", "Words", True))


class FindTextTool(SelectTool):
    """Selecting and moving as usual: the tool's work is in its options bar and the Text dock."""

    name = "text"
    label = "Text"

    def status_hint(self) -> str:
        return ("Find Text reads the page's paragraphs, lines and words as proposals; the Text dock lists "
                "them. Shapes can still be selected here.")


class TextOptions(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("text-options")
        self.levels: dict[str, QCheckBox] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Find:"))
        for key, text, on in LEVEL_BOXES:
            box = QCheckBox(text)
            box.setChecked(on)
            box.setToolTip({"strokes": "The ink of the text, as one mask per page",
                            "paragraphs": "Blocks of text (Text ▸ Paragraph)",
                            "lines": "Text lines (Text ▸ Line), inside their paragraphs",
                            "words": "Words (Text ▸ Word), inside their lines"}[key])
            self.levels[key] = box
            layout.addWidget(box)
        self.scope = scope_box()
        self.window = QComboBox()
        self.window.addItem("Page scale", 1024)
        self.window.addItem("Whole page (faster)", None)
        self.window.setToolTip("Large pages are read in overlapping windows at their own scale, so that small "
                               "print is not lost; reading the page whole is faster but misses small text")
        self.run = QPushButton("Find Text")
        for widget in (self.scope, self.window, self.run):
            layout.addWidget(widget)
        layout.addStretch(1)

    def chosen_levels(self) -> set[str]:
        return {key for key, box in self.levels.items() if box.isChecked()}


class TextController:
    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.tool = FindTextTool(context.canvas.scene, lambda geometry: None)
        context.canvas.add_tool(self.tool)
        self.options = TextOptions()
        self.options.run.clicked.connect(self.run)
        self.panel = TextTreePanel(context, self.transcribe)
        self.running = False

    def run(self) -> None:
        project = self.context.project()
        if project is None or self.running:
            return
        levels = self.options.chosen_levels()
        if not levels:
            self.context.notifications.info("Tick what to find: strokes, paragraphs, lines or words.")
            return
        pages = pages_in_scope(self.context, self.options.scope.currentData())
        if not pages:
            self.context.notifications.info("There is no page to look at in this scope.")
            return
        if not self.context.model_ready(MODEL, "Find text"):
            return
        from engine.batch.tasks.text import TextTask  # noqa: PLC0415 - torch loads when used
        from engine.text.hierarchy import TextOptions as Options  # noqa: PLC0415

        task = TextTask(MODEL, levels, Options(window=self.options.window.currentData()), self.context.curator())
        service = self.context.models()

        def start(cluster: Any, took: str) -> None:
            if self.running or project is not self.context.project():
                return  # a second answer to the question, or another project by now
            self.running = True
            self.options.run.setEnabled(False)
            submit_batch(self.context, f"Finding text on {len(pages)} page(s)", task, service, pages, cluster, took,
                         lambda report: self._done(project, report), self._ended)

        start_or_ask(self.context, "Find Text", task, service, pages, start)

    def _done(self, project: Any, report: Any) -> None:
        if project is not self.context.project():
            return
        self.context.announce_annotations_changed()
        self.context.notifications.result(f"Find text: {report.summary}.")

    def _ended(self) -> None:
        self.running = False
        self.options.run.setEnabled(True)

    def transcribe(self, annotation_id: int, text: str) -> None:
        """The typed transcription of a line or word, as one undoable step."""
        from gui.commands import SetText  # noqa: PLC0415

        ctx, image_id = self.context.labelling.ctx, self.context.labelling.image_id
        record = next((r for r in self.context.labelling.records() if r.id == annotation_id), None)
        if ctx is None or image_id is None or record is None or (record.text or "") == text:
            return
        self.context.undo_stack.push(SetText(ctx, image_id, annotation_id, text))


class TextPlugin:
    name = "text"

    def __init__(self, context: ToolContext) -> None:
        self.controller = TextController(context)

    def offer(self) -> ToolOffer:
        return ToolOffer(palette=[PaletteEntry(self.controller.tool, "Find &Text", "T", "text")],
                         options=self.controller.options,
                         docks=[DockEntry("text", "Text", self.controller.panel, tab_with="annotations")])

    def project_closed(self) -> None:
        self.controller.running = False


def create(context: ToolContext) -> TextPlugin:
    return TextPlugin(context)
