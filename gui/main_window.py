"""The main window: gallery and canvas in the middle, panels around, menus on top."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSizePolicy,
    QStackedWidget,
    QTabBar,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import MarginaliaError
from engine.inventory import ImageRow, list_images
from engine.paths import user_cache_dir
from engine.project import Project
from engine.sessions import end_session, start_session
from gui.canvas.view import ImageCanvas
from gui.category_button import CategoryButton
from gui.commands import EditContext
from gui.dialogs import WelcomePage
from gui.docks.annotations import AnnotationsPanel
from gui.docks.categories import CategoriesPanel
from gui.docks.metadata import MetadataPanel
from gui.events import ProjectEvents
from gui.file_actions import FileActions
from gui.gallery import GalleryPanel
from gui.icons import themed_icon
from gui.iiif_actions import IiifActions
from gui.labelling import LabellingController, LabellingViews
from gui.layers_menu import LayersMenu
from gui.layout_actions import LayoutActions
from gui.menus import build_menus
from gui.notifications import NotificationArea
from gui.page_loader import PageLoader
from gui.power_watch import BatteryWatch
from gui.review_queue import ReviewQueue
from gui.settings import AppSettings
from gui.status import StatusBar
from gui.team_changes import TeamChanges
from gui.tools.catalogue import load_tools
from gui.tools.seam import ToolContext, ToolOffer, ToolPlugin
from gui.workers import JobRunner

if TYPE_CHECKING:
    from engine.models.service import ModelService


# Jobs check their cancel token at least every second; quitting waits no longer than that.
QUIT_WAIT_MS = 1500


class MainWindow(QMainWindow):
    project_opened = Signal()
    page_ready = Signal()  # the selected page is shown at its sharpest
    waiting_for_project = Signal(str)  # emitted from job threads while another process writes

    def __init__(self, settings: AppSettings, curator: str) -> None:
        super().__init__()
        self.settings = settings
        self._model_service: ModelService | None = None
        self.curator = curator
        self.project: Project | None = None
        self.read_only_note: QWidget | None = None
        self.team_changes: TeamChanges | None = None  # other curators' work, shown live (team projects)
        self.confirm_quit = False  # the app asks before quitting over running jobs; scripted windows do not
        self.actions_by_name: dict[str, QAction] = {}
        self.jobs = JobRunner(self)
        self.events = ProjectEvents(self)
        self.undo_stack = QUndoStack(self)
        self.notifications = NotificationArea()
        self.jobs.failed.connect(lambda title, message: self.notifications.error(f"{title}: {message}"))
        self.jobs.cancelled.connect(lambda title: self.notifications.info(f"{title}: cancelled."))
        self.battery_watch = BatteryWatch(self.jobs.background_gate, lambda: self.settings.pause_on_battery,
                                          parent=self)
        self.battery_watch.changed.connect(self._battery_changed)

        self.gallery = GalleryPanel(self.jobs)
        self.canvas = ImageCanvas()
        self.categories = CategoriesPanel(self.undo_stack)
        self.annotations = AnnotationsPanel()
        self.metadata = MetadataPanel()
        self.status = StatusBar(self.jobs)
        self.setStatusBar(self.status)
        self.waiting_for_project.connect(lambda message: self.status.showMessage(message, 8000))
        self.welcome = WelcomePage(self.ask_new_project, self.ask_open_project, self.open_demo)
        self.welcome.open_recent.connect(self.open_project)
        self._build_layout()

        self.loader = PageLoader(self.jobs, lambda message: self.notifications.error(message),
                                 lambda: None if self.project is None else user_cache_dir()
                                 if self.project.read_only else self.project.cache_dir)
        views = LabellingViews(self.canvas, self.gallery, self.categories, self.annotations,
                               self.metadata, self.status, self.notifications)
        self.labelling = LabellingController(views, self.undo_stack, self.loader, settings,
                                             self.refresh_gallery, self.jobs)
        self.labelling.on_page_ready = self.page_ready.emit
        self.review = ReviewQueue(self.labelling, self.gallery, self.canvas, self.jobs, self.notifications,
                                  self.status.review_label)
        self.layers = LayersMenu(self.canvas, self.labelling, settings,
                                 lambda: None if self.project is None else self.project.folder, self)
        self.category_button = CategoryButton(self.categories)
        self.files = FileActions(self, self.jobs, self.notifications, lambda: self.project,
                                 self.refresh_gallery, settings, lambda paths: self.layouts.import_files(paths))
        self.layouts = LayoutActions(self, self.jobs, self.notifications, settings, lambda: self.project,
                                     self._annotations_imported, lambda: self.labelling.image_id,
                                     lambda image_id: self.gallery.reveal(image_id))
        self.iiif = IiifActions(self, self.jobs, self.notifications, settings, lambda: self.project,
                                self.refresh_gallery)
        self.tools: dict[str, ToolPlugin] = load_tools(self._tool_context())
        offers = [tool.offer() for tool in self.tools.values()]
        self._add_tool_docks(offers)
        self.actions_by_name = build_menus(self, offers)
        self._build_tool_bars(offers)
        self.gallery.import_requested.connect(self.files.ask_import_folder)
        self.canvas.zoom_changed.connect(self.status.set_zoom)
        self.canvas.cursor_moved.connect(self.status.set_position)
        self.canvas.tool_changed.connect(self._tool_changed)
        self._tool_changed("select")
        self.setWindowTitle("Marginalia")
        geometry, state = settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._fit_screen(preferred=None if geometry is not None else QSize(1400, 900))
        self._show_welcome()

    def _fit_screen(self, preferred: QSize | None) -> None:
        """A first start opens at a comfortable size, and no start opens larger than the screen (a laptop's
        1280×720, or a monitor that was unplugged since)."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        wanted = preferred or self.size()
        if screen is None:
            self.resize(wanted)
            return
        title_bar = 32  # the window manager's frame is not known before the window is shown
        self.resize(min(wanted.width(), screen.width()), min(wanted.height(), screen.height() - title_bar))
        if not screen.intersects(self.frameGeometry()):
            self.move(screen.topLeft())

    # -- model tools ------------------------------------------------------------------------

    def _tool_context(self) -> ToolContext:
        return ToolContext(
            project=lambda: self.project, jobs=self.jobs, canvas=self.canvas, models=self.model_service,
            undo_stack=self.undo_stack, labelling=self.labelling, pages=self.gallery, annotations=self.annotations,
            notifications=self.notifications, show_status=self.status.showMessage, settings=self.settings,
            project_opened=self.project_opened, open_models=self._open_models, parent=self)

    def _open_models(self, model_id: str | None) -> object:
        from gui.model_hint import show_models  # noqa: PLC0415 - the models code loads on demand

        return show_models(self, self.model_service().store, model_id)

    def _add_tool_docks(self, offers: list[ToolOffer]) -> None:
        for entry in (dock for offer in offers for dock in offer.docks):
            dock = QDockWidget(entry.title, self)
            dock.setObjectName(f"dock-{entry.name}")
            dock.setWidget(entry.widget)
            self.addDockWidget(entry.area, dock)
            if entry.tab_with in self.docks:
                self.tabifyDockWidget(self.docks[entry.tab_with], dock)
                self.docks[entry.tab_with].raise_()  # a tool's dock joins the tabs behind, never in front
            self.docks[entry.name] = dock
        self.docks["gallery"].raise_()

    def _build_tool_bars(self, offers: list[ToolOffer]) -> None:
        """The palette (one button per canvas tool) and, beside it, the options of the active tool, in a bar
        that is always there, so options appearing never move the page."""
        palette = QToolBar("Tools")
        palette.setObjectName("toolbar-palette")
        palette.setMovable(False)
        palette.setOrientation(Qt.Orientation.Vertical)
        palette.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        palette.setIconSize(QSize(24, 24))
        for name, action in self.actions_by_name.items():
            if name.startswith("tool-"):
                palette.addAction(action)
        palette.addSeparator()
        layers_button = QToolButton(text="Layers", toolTip="Which annotations the page shows, and how (O: outlines)")
        layers_button.setIcon(themed_icon("layers"))
        layers_button.setMenu(self.layers)
        layers_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        palette.addWidget(layers_button)
        palette.addWidget(self.category_button)
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, palette)
        self.tool_options = QToolBar("Tool options")
        self.tool_options.setObjectName("toolbar-tool-options")
        self.tool_options.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.tool_options)
        # A toolbar shows and hides its widgets through the actions that hold them. A tool without options
        # shows how it is used instead of an empty strip.
        self._tool_hint = QLabel()
        self._tool_hint.setObjectName("tool-hint")
        self._tool_hint.setContentsMargins(8, 0, 8, 0)
        self._tool_hint.setStyleSheet("color: palette(placeholder-text)")
        self._tool_hint_holder = self.tool_options.addWidget(self._tool_hint)
        self._tool_options: dict[str, QAction] = {}
        for offer in offers:
            if offer.options is None:
                continue
            holder = self.tool_options.addWidget(offer.options)
            for entry in offer.palette:
                self._tool_options[entry.tool.name] = holder
        height = max([self.tool_options.sizeHint().height(),
                      *(offer.options.sizeHint().height() for offer in offers if offer.options is not None)])
        self.tool_options.setFixedHeight(height)
        for holder in self._tool_options.values():
            holder.setVisible(False)

    def _build_layout(self) -> None:
        # The page takes the middle. Pages and search results share the left column as tabs (each gets its
        # full height, even at 1280×720); categories, annotations and metadata stack on the right. Every
        # dock can be resized, moved, tabbed or floated, and the window remembers how.
        self.pages = QStackedWidget()
        # The welcome page is shown without docks, so its width must not widen the window at laptop sizes.
        self.welcome.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self.canvas)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notifications)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.setTabPosition(Qt.DockWidgetArea.LeftDockWidgetArea, QTabWidget.TabPosition.North)
        self.setDockNestingEnabled(True)
        self.docks: dict[str, QDockWidget] = {}
        self._docks_to_restore: list[QDockWidget] = []
        for name, title, widget, area in (
                ("gallery", "Pages", self.gallery, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("categories", "Categories", self.categories, Qt.DockWidgetArea.RightDockWidgetArea),
                ("annotations", "Annotations", self.annotations, Qt.DockWidgetArea.RightDockWidgetArea),
                ("metadata", "Page metadata", self.metadata, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{name}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
        self.resizeDocks([self.docks["gallery"], self.docks["categories"]], [360, 330], Qt.Orientation.Horizontal)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None and screen.height() < 900:
            # A laptop's height: the Annotations table shares its place with the page's metadata (tabs), so
            # that review has rows to show. A layout the curator arranged is restored over this.
            self.tabifyDockWidget(self.docks["annotations"], self.docks["metadata"])
            self.docks["annotations"].raise_()

    def _set_docks_visible(self, visible: bool) -> None:
        """Docks make no sense over the welcome page; when a project opens, those the curator had open return
        (a dock they closed stays closed)."""
        if not visible:
            self._docks_to_restore = self._docks_to_restore or [d for d in self.docks.values() if not d.isHidden()]
            for dock in self.docks.values():
                dock.hide()
            return
        for dock in self._docks_to_restore or list(self.docks.values()):
            dock.show()
        self._docks_to_restore = []
        self.docks["gallery"].raise_()
        for name in self.settings.raised_docks():  # the tabs the curator had in front
            if name in self.docks and not self.docks[name].isHidden():
                self.docks[name].raise_()

    def _raised_dock_names(self) -> list[str]:
        """The dock in front in each group of tabbed docks (read off the tab bars the window makes for them)."""
        by_title = {dock.windowTitle(): name for name, dock in self.docks.items()}
        return [by_title[bar.tabText(bar.currentIndex())] for bar in self.findChildren(QTabBar)
                if bar.parent() is self and bar.count() > 1 and bar.tabText(bar.currentIndex()) in by_title]

    def _show_welcome(self) -> None:
        self.welcome.set_recent(self.settings.recent_projects())
        self.pages.setCurrentWidget(self.welcome)
        self._set_docks_visible(False)

    def _tool_changed(self, name: str) -> None:
        shown = self._tool_options.get(name)
        for holder in self._tool_options.values():
            holder.setVisible(holder is shown)
        self._tool_hint_holder.setVisible(shown is None)
        self._tool_hint.setText(f"{self.canvas.tool.label}: {self.canvas.tool.status_hint()}")
        self._tool_hint.setToolTip(self._tool_hint.text())
        self.status.set_tool(self.canvas.tool.label)
        self.status.showMessage(self.canvas.tool.status_hint(), 5000)
        action = self.actions_by_name.get(f"tool-{name}")
        if action is not None:
            action.setChecked(True)

    # -- projects ------------------------------------------------------------------------

    def open_project(self, folder: Path) -> bool:
        """Open a project off the UI thread (upgrading an older one, after a backup, can take a while);
        ``True`` when opening has started. Failures arrive as notifications."""
        folder = Path(folder)
        waiting = QProgressDialog(f"Opening {folder.name}… (an older project is upgraded first, after a backup)",
                                  "", 0, 0, self)
        waiting.setWindowTitle("Opening project")
        waiting.setCancelButton(None)  # an upgrade stops only between its own safe steps
        waiting.setWindowModality(Qt.WindowModality.WindowModal)
        waiting.reset()  # not shown until the timer below says the open is taking a while
        finished: list[bool] = []

        def done() -> None:
            finished.append(True)
            waiting.close()
            waiting.deleteLater()

        def opened(project: Project) -> None:
            done()
            self.attach_project(project)

        QTimer.singleShot(300, lambda: None if finished else waiting.show())  # a quick open shows nothing
        self.jobs.submit(f"Opening {folder.name}", lambda progress, cancel: Project.open(folder), opened,
                         on_failure=lambda message: done())
        return True

    def open_demo(self) -> None:
        from engine.demo import open_demo_project  # noqa: PLC0415 - only the first run needs it

        note = self.notifications.info("Preparing the demo project…")

        def opened(project: Project) -> None:
            self.notifications.dismiss(note)
            self.attach_project(project)

        self.jobs.submit("Preparing the demo project", lambda progress, cancel: open_demo_project(),
                         opened)

    def ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a Marginalia project",
                                                  str(self.settings.start_folder("projects")))
        if folder:
            self.settings.remember_folder("projects", Path(folder).parent)
            self.open_project(Path(folder))

    def ask_new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project",
                                                  str(self.settings.start_folder("projects")))
        if not folder:
            return
        self.settings.remember_folder("projects", Path(folder).parent)
        name, ok = QInputDialog.getText(self, "New project", "Project name:", text=Path(folder).name)
        if not ok:
            return
        try:
            project = Project.create(Path(folder), name=name.strip() or None, empty_folder_only=True)
        except MarginaliaError as error:
            self.notifications.error(str(error))
            return
        self.attach_project(project)

    def attach_project(self, project: Project) -> None:
        self.close_project()
        self.notifications.clear()  # what was said of the previous project no longer applies
        self.project = project
        project.on_waiting = self.waiting_for_project.emit
        session_id = None if project.read_only else start_session(project, self.curator)
        self.labelling.attach(EditContext(project, self.events, self.curator, session_id,
                                          self.notifications.error))
        self.team_changes = TeamChanges(project, self.events, self)
        self.settings.remember_project(project.folder)
        self.layers.project_opened(project.folder)
        if project.read_only and project.is_team:
            self.read_only_note = self.notifications.warning(
                "Read-only: your role in this team project is a viewer's. You can browse, search and export it; "
                "ask the project's administrator for an annotator's role to change it.")
        elif project.read_only:
            self.read_only_note = self.notifications.warning(
                f"Read-only: {project.folder} cannot be written here (a read-only folder, share or disc). "
                "You can browse, search and export it to another folder; changes are not possible.")
        self.setWindowTitle(f"{project.name}{' (read-only)' if project.read_only else ''} — Marginalia")
        self.pages.setCurrentIndex(1)
        self._set_docks_visible(True)
        self.refresh_gallery(select_first=True)

    def close_project(self) -> None:
        if self.project is None:
            return
        self.loader.cancel()
        try:
            self.metadata.flush()
            ctx = self.labelling.ctx
            if ctx is not None and ctx.session_id is not None:
                end_session(self.project, ctx.session_id)
        except MarginaliaError as error:  # a damaged or vanished project: it still closes, and says why
            logging.getLogger(__name__).warning("closing %s: %s", self.project.folder, error)
        if self.team_changes is not None:
            self.team_changes.stop()
            self.team_changes = None
        self.labelling.attach(None)
        if self.read_only_note is not None:
            self.notifications.dismiss(self.read_only_note)
            self.read_only_note = None
        self.review.stop()
        self.undo_stack.clear()
        for tool in self.tools.values():
            tool.project_closed()
        self.gallery.set_rows([], self.project.thumbnail_dir)
        self.project.close()
        self.project = None
        self.setWindowTitle("Marginalia")
        self._show_welcome()

    def _annotations_imported(self) -> None:
        self.refresh_gallery()
        if self.labelling.ctx is not None:
            self.labelling.ctx.events.annotations_changed.emit(-1)

    def refresh_gallery(self, select_first: bool = False) -> None:
        project = self.project
        if project is None:
            return
        self.jobs.submit("Listing pages", lambda progress, cancel: list_images(project),
                         lambda rows: self._rows_loaded(project, rows, select_first), visible=False)

    def _rows_loaded(self, project: Project, rows: list[ImageRow], select_first: bool) -> None:
        if project is not self.project:
            return
        current = self.gallery.current_image_id()
        self.gallery.set_rows(rows, project.thumbnail_dir)
        self.labelling.reload_categories()
        if select_first:
            current = self.settings.last_page(project.folder)  # reopen where the curator left off
        if current is None or not self.gallery.select_image(current):
            visible = self.gallery.visible_image_ids()
            if visible and (select_first or current is None):
                self.gallery.select_image(visible[0])
        self.project_opened.emit()

    # -- closing -----------------------------------------------------------------------------

    def _battery_changed(self, paused: bool) -> None:
        self.notifications.info("On battery: background model work is paused until the laptop is plugged in "
                                "(Models ▸ Pause background model work on battery)." if paused
                                else "Plugged in: background model work goes on.")

    def model_service(self) -> ModelService:
        """The app's one model runtime, created on first use (models load lazily inside it)."""
        if self._model_service is None:
            from engine.models.precision import set_policy  # noqa: PLC0415
            from engine.models.runtime import ModelManager  # noqa: PLC0415 - not needed at start-up
            from engine.models.service import ModelService  # noqa: PLC0415
            from engine.models.store import ModelStore  # noqa: PLC0415

            set_policy(self.settings.model_precision)
            self._model_service = ModelService(ModelStore(), ModelManager(preference=self.settings.model_device,
                                                                          yield_to_ui=True))
        return self._model_service

    def reset_model_service(self) -> None:
        """Forget loaded models (after a device change); they are released off the UI thread."""
        service, self._model_service = self._model_service, None
        if service is not None and service.manager.loaded():
            self.jobs.submit("Releasing models", lambda progress, cancel: service.manager.unload_all())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        running = [job.title for job in self.jobs.running_jobs() if job.visible]
        if running and self.confirm_quit and QMessageBox.question(
                self, "Quit Marginalia?",
                f"{len(running)} job(s) are still running ({', '.join(running[:3])}). Quit anyway? They stop "
                "where they are; everything finished so far is saved.") != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self.settings.save_window_state(self.saveGeometry(), self.saveState())
        if self.project is not None:  # over the welcome page the docks are put away: nothing is in front
            self.settings.save_raised_docks(self._raised_dock_names())
        # Closing takes a moment (the session's record, stopping jobs): say so at once, then get out of the way.
        self.status.showMessage("Closing: saving the session and stopping background work…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        self.status.repaint()
        try:
            self.jobs.cancel_all()
            self.close_project()
            self.hide()
            self.jobs.wait(QUIT_WAIT_MS)
        finally:
            QApplication.restoreOverrideCursor()
        super().closeEvent(event)
