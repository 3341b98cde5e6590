"""File menu work that runs in the background: importing scans, COCO import and export, relinking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from engine.coco.exporter import ExportSummary, default_images_root, export_coco
from engine.coco.importer import CocoImportReport, import_coco
from engine.ingest.report import ImportReport, Outcome
from engine.ingest.scan_import import import_scans
from engine.paths import displayable
from engine.project import Project
from engine.relink import RelinkReport, relink
from gui.export_dialog import ExportDialog, ExportRequest
from gui.import_report import ImportReportDialog
from gui.notifications import NotificationArea
from gui.settings import AppSettings
from gui.workers import JobRunner

IMAGE_FILTER = ("Images and PDFs (*.jpg *.jpeg *.png *.tif *.tiff *.jp2 *.j2k *.webp *.bmp *.gif *.heic *.heif "
                "*.avif *.pdf);;All files (*)")


class FileActions:
    def __init__(self, parent: QWidget, jobs: JobRunner, notifications: NotificationArea,
                 project: Callable[[], Project | None], on_project_changed: Callable[[], None],
                 settings: AppSettings, import_layouts: Callable[[list[Path]], None] = lambda paths: None) -> None:
        self._parent = parent
        self._import_layouts = import_layouts
        self._settings = settings
        self._jobs = jobs
        self._notes = notifications
        self._project = project
        self._changed = on_project_changed
        self.export_dialog: ExportDialog | None = None
        self.last_import: ImportReport | None = None
        self.report_dialog: ImportReportDialog | None = None

    def _require_project(self) -> Project | None:
        project = self._project()
        if project is None:
            self._notes.warning("Open or create a project first.")
        return project

    # -- scans ---------------------------------------------------------------------

    def ask_import_files(self) -> None:
        if self._require_project():
            files, _ = QFileDialog.getOpenFileNames(self._parent, "Import images",
                                                    str(self._settings.start_folder("scans")), IMAGE_FILTER)
            if files:
                self._settings.remember_folder("scans", Path(files[0]).parent)
                self.import_paths([Path(f) for f in files])

    def ask_import_folder(self) -> None:
        if self._require_project():
            folder = QFileDialog.getExistingDirectory(self._parent, "Import a folder of images",
                                                      str(self._settings.start_folder("scans")))
            if folder:
                self._settings.remember_folder("scans", Path(folder).parent)
                self.import_paths([Path(folder)])

    def import_paths(self, paths: list[Path]) -> None:
        project = self._require_project()
        if project is None:
            return
        self._jobs.submit(
            "Importing images",
            lambda progress, cancel: import_scans(project, paths, progress=progress, cancel=cancel),
            self._imported, background=True)

    def _imported(self, report: ImportReport) -> None:
        self._changed()
        self.last_import = report
        layouts = report.layout_files()
        if layouts:  # PAGE/ALTO beside the scans: one click puts them on their pages
            self._notes.result(f"{len(layouts)} PAGE XML or ALTO file(s) were among the scans.",
                               actions=[(f"Import the {len(layouts)} layout file(s)",
                                         lambda: self._import_layouts(layouts))])
        plain = all(result.outcome is Outcome.IMPORTED or result.layout for result in report.results)
        if plain:
            self._notes.result(report.summary(), actions=[("Show report", self.show_import_report)])
        else:
            (self._notes.warning if report.of(Outcome.FAILED) else self._notes.info)(report.summary())
            self.show_import_report()

    def show_import_report(self) -> None:
        project = self._project()
        if self.last_import is None:
            self._notes.info("Nothing has been imported since Marginalia started.")
            return
        default = (project.folder.parent if project is not None else Path.home()) / "import-report.csv"
        if self.report_dialog is not None:
            self.report_dialog.close()
        self.report_dialog = ImportReportDialog(self.last_import, default, self._parent)
        self.report_dialog.show()

    # -- COCO ----------------------------------------------------------------------

    def ask_import_coco(self) -> None:
        if self._require_project():
            path, _ = QFileDialog.getOpenFileName(self._parent, "Import COCO annotations",
                                                  str(self._settings.start_folder("coco")),
                                                  "COCO JSON (*.json);;All files (*)")
            if path:
                self._settings.remember_folder("coco", Path(path).parent)
                self.import_coco_file(Path(path))

    def import_coco_file(self, path: Path) -> None:
        project = self._require_project()
        if project is not None:
            self._jobs.submit("Importing annotations",
                              lambda progress, cancel: import_coco(project, path, progress=progress, cancel=cancel),
                              self._coco_imported, background=True)

    def _coco_imported(self, report: CocoImportReport) -> None:
        self._changed()
        if report.problems or report.corrections:
            details = "\n".join(f"• {p}" for p in (report.problems + report.corrections)[:6])
            self._notes.warning(f"{report.summary()}\n{details}")
        else:
            self._notes.result(report.summary())

    def ask_export_coco(self, include_proposals: bool = False) -> None:
        project = self._require_project()
        if project is None:
            return
        folder = project.folder.parent if project.read_only else project.folder
        dialog = ExportDialog(self._parent, folder / f"{project.name}.coco.json", default_images_root(project),
                              include_proposals)
        self.export_dialog = dialog  # reachable while open (tests drive it)
        if dialog.exec():
            self.export_coco_file(dialog.request())

    def export_coco_file(self, request: ExportRequest) -> None:
        project = self._require_project()
        if project is not None:
            self._jobs.submit(
                "Exporting annotations",
                lambda progress, cancel: export_coco(
                    project, request.path, include_proposals=request.include_proposals,
                    image_root=None if request.with_images else request.images_root,
                    with_images=request.with_images, overwrite=True, progress=progress, cancel=cancel),
                self._exported, background=True)

    def _exported(self, summary: ExportSummary) -> None:
        self._notes.result(f"Exported {summary.annotations} annotation(s) on {summary.images} page(s) "
                         f"to {displayable(summary.path)}; file names are relative to "
                         f"{displayable(summary.images_root)}")

    # -- relink --------------------------------------------------------------------

    def ask_relink(self) -> None:
        project = self._require_project()
        if project is None:
            return
        folder = QFileDialog.getExistingDirectory(self._parent, "Where are the moved images now?",
                                                  str(self._settings.start_folder("scans")))
        if folder:
            self._jobs.submit(
                "Looking for moved images",
                lambda progress, cancel: relink(project, [Path(folder)], progress=progress, cancel=cancel),
                self._relinked, background=True)

    def _relinked(self, report: RelinkReport) -> None:
        self._changed()
        (self._notes.warning if report.still_missing else self._notes.info)(report.summary())
