"""The seam between the window and its model tools (SAM, search, and those to come).

A tool is a plug-in: a module named in ``gui.tools.catalogue`` whose ``create(context)`` returns a
``ToolPlugin``. The window hands every tool the same ``ToolContext`` of narrow collaborators and
places what the tool offers: palette entries (canvas tools, with their keys), an options panel shown
in the fixed tool-options bar while the tool's canvas tool is active, Tools-menu entries, and docks.
A tool never sees the main window, so adding one never means editing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtGui import QAction, QUndoStack
    from PySide6.QtWidgets import QWidget

    from engine.batch.runner import ClusterChoice
    from engine.models.service import ModelService
    from engine.project import Project
    from gui.canvas.tools import Tool
    from gui.canvas.view import ImageCanvas
    from gui.docks.annotations import AnnotationsPanel
    from gui.gallery import GalleryPanel
    from gui.labelling import LabellingController
    from gui.notifications import NotificationArea
    from gui.settings import AppSettings
    from gui.workers import JobRunner


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use. Each field is one collaborator; none of them is the window."""

    project: Callable[[], Project | None]  # the open project, or None
    jobs: JobRunner  # every slow step runs here (progress, cancel, errors)
    canvas: ImageCanvas  # the page view: tools add their canvas tool and overlays to it
    models: Callable[[], ModelService]  # the app's one model runtime, created on first use
    undo_stack: QUndoStack
    labelling: LabellingController  # the open page, the chosen category, saving shapes
    pages: GalleryPanel  # the pages in gallery order, and going to one
    annotations: AnnotationsPanel
    notifications: NotificationArea
    show_status: Callable[[str, int], None]  # a transient status-bar message (text, milliseconds)
    settings: AppSettings
    project_opened: SignalInstance
    open_models: Callable[[str | None], object]  # the Models dialog, with a model selected
    parent: QWidget  # the owner of dialogs and message boxes
    hinted: set[tuple[str, str]] = field(default_factory=set)  # (tool, model) pairs whose hint was shown

    def model_ready(self, model_id: str, tool: str) -> bool:
        """``True`` when the model is installed; otherwise the tool waits, and the curator is told once per tool
        and model in a hint that offers the Models dialog (later, in a line among the notifications): a toggle
        or a key held down must never open window after window."""
        from engine.models.catalogue import get_spec  # noqa: PLC0415 - the models code loads on demand
        from gui.model_hint import hint_for_missing_model, missing_models  # noqa: PLC0415

        store = self.models().store
        if not missing_models(store, model_id):
            return True
        if (tool, model_id) in self.hinted:
            self.notifications.info(f"{tool} waits for {get_spec(model_id).name}, which is not installed: "
                                    "Tools ▸ Models… installs it.")
            return False
        self.hinted.add((tool, model_id))
        hint_for_missing_model(self.parent, store, model_id, tool, self.open_models)
        return False

    def cluster_for(self, pages: int) -> ClusterChoice | None:
        """Where a job over ``pages`` runs: the Ray cluster set in the Models dialog ("Run large jobs on") when it
        spans several pages, else ``None``: this computer."""
        address = self.settings.large_jobs_cluster
        if not address or pages < 2:
            return None
        from engine.batch.runner import ClusterChoice  # noqa: PLC0415

        return ClusterChoice(address)

    def curator(self) -> str:
        """Who is working: the name stored with what a tool proposes."""
        ctx = self.labelling.ctx
        return ctx.curator if ctx is not None else ""

    def announce_annotations_changed(self) -> None:
        """A tool changed annotations on any page: every view reads them again."""
        ctx = self.labelling.ctx
        if ctx is not None:
            ctx.events.annotations_changed.emit(-1)

    def go_to_page(self, image_id: int) -> bool:
        """Show a page, clearing the gallery's filters when they hide it; ``False`` when it is gone."""
        return self.pages.reveal(image_id)


@dataclass(frozen=True)
class PaletteEntry:
    """A canvas tool the palette offers (checkable, one active at a time)."""

    tool: Tool
    text: str  # the menu text, with its mnemonic
    key: str
    icon: str = "tool"  # an icon of ``assets/icons`` (the generic one when the tool has none)


@dataclass(frozen=True)
class DockEntry:
    name: str  # also the dock's object name suffix, remembered in the window state
    title: str
    widget: QWidget
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    tab_with: str | None = None  # an existing dock to share a tab group with


@dataclass
class ToolOffer:
    """Everything one tool puts into the window; the window decides where each part goes."""

    palette: list[PaletteEntry] = field(default_factory=list)
    options: QWidget | None = None  # shown while one of ``palette``'s tools is active
    menu: list[tuple[str, QAction] | None] = field(default_factory=list)  # (registry name, action); None: separator
    docks: list[DockEntry] = field(default_factory=list)


class ToolPlugin(Protocol):
    name: str

    def offer(self) -> ToolOffer:
        """What this tool adds to the window (called once, after ``create``)."""
        ...

    def project_closed(self) -> None:
        """Forget everything about the closed project (its ids mean nothing in the next one)."""
        ...
