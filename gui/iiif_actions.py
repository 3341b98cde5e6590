"""File ▸ Import from IIIF…: a digitised book from its manifest's address (or a saved manifest file), at full
resolution or a chosen size, all canvases or some; File ▸ Import W3C Web Annotations… and File ▸ Export IIIF
with Web Annotations…: shapes given to and taken from IIIF viewers and annotation tools.

Each is a job with progress and Cancel: pages already fetched stay, and importing again continues. A
collection's address offers its manifests to choose from; canvases that could not be had, and annotations that
could not be placed, are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from engine.paths import displayable
from engine.project import Project
from gui.iiif_dialogs import IiifImportDialog, IiifImportRequest, WebExportDialog
from gui.notifications import NotificationArea
from gui.settings import AppSettings
from gui.workers import JobRunner

if TYPE_CHECKING:
    from engine.iiif.importer import IiifImportReport
    from engine.iiif.manifest import Collection
    from engine.webannotation.importer import WebAnnotationImport

CHOICES_SHOWN = 5  # manifests of a collection offered as buttons; the message names how many there are


class IiifActions:
    def __init__(self, parent: QWidget, jobs: JobRunner, notifications: NotificationArea, settings: AppSettings,
                 project: Callable[[], Project | None], changed: Callable[[], None]) -> None:
        self._parent, self._jobs, self._notes, self._settings = parent, jobs, notifications, settings
        self._project, self._changed = project, changed
        self.dialog: QDialog | None = None  # the one open, for tests

    def _require_project(self) -> Project | None:
        project = self._project()
        if project is None:
            self._notes.warning("Open or create a project first.")
        return project

    def ask_import(self) -> None:
        if self._require_project() is None:
            return
        self.dialog = dialog = IiifImportDialog(self._parent, self._settings.start_folder("iiif"))
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                self.import_manifest(dialog.request())
        finally:
            self.dialog = None

    def import_manifest(self, request: IiifImportRequest | str) -> None:
        project = self._project()
        if project is None:
            return
        if isinstance(request, str):
            request = IiifImportRequest(request, None, None)

        def work(progress: Any, cancel: Any) -> IiifImportReport | Collection:
            from engine.iiif.importer import CollectionGiven, import_manifest  # noqa: PLC0415

            try:
                return import_manifest(project, request.source, size=request.size, canvases=request.canvases,
                                       progress=progress, cancel=cancel)
            except CollectionGiven as given:
                return given.collection

        self._jobs.submit("Importing from IIIF", work, self._done)

    def _done(self, outcome: IiifImportReport | Collection) -> None:
        from engine.iiif.manifest import Collection  # noqa: PLC0415

        if isinstance(outcome, Collection):
            manifests = [entry for entry in outcome.items if entry.kind == "Manifest"]
            choices = [(f"Import {entry.label or entry.id}",
                        lambda entry=entry: self.import_manifest(IiifImportRequest(entry.id, None, None)))
                       for entry in manifests[:CHOICES_SHOWN]]
            more = f" (the first {CHOICES_SHOWN} are offered here)" if len(manifests) > CHOICES_SHOWN else ""
            self._notes.show_message("info", f"{outcome.label or outcome.id} is a IIIF collection of "
                                             f"{len(manifests)} manifest(s){more}: choose one to import.", choices)
            return
        self._changed()
        self._tell(outcome.summary(), [f"• {label}: {reason}" for label, reason in outcome.failed[:5]]
                   + [f"• {reason}" for reason in outcome.left_out[:3]])

    def _tell(self, summary: str, problems: list[str]) -> None:
        """What came of an import: a result, or a warning listing its problems under it."""
        if problems:
            self._notes.show_message("warning", summary + "\n" + "\n".join(problems))
        else:
            self._notes.result(summary)

    def ask_import_annotations(self) -> None:
        project = self._require_project()
        if project is None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self._parent, "Import W3C Web Annotations",
                                                str(self._settings.start_folder("w3c")),
                                                "Web Annotations (*.json *.jsonld);;All files (*)")
        if not paths:
            return
        self._settings.remember_folder("w3c", Path(paths[0]).parent)
        files, curator = [Path(path) for path in paths], self._settings.curator

        def work(progress: Any, cancel: Any) -> WebAnnotationImport:
            from engine.webannotation.importer import import_web_annotations  # noqa: PLC0415

            return import_web_annotations(project, files, creator=curator)

        self._jobs.submit(f"Importing {len(files)} Web Annotation file(s)", work, self._annotations_imported)

    def _annotations_imported(self, report: WebAnnotationImport) -> None:
        self._changed()
        self._tell(report.summary(), [f"• {displayable(reason)}" for reason in report.refused[:5]])

    def ask_export(self) -> None:
        project = self._require_project()
        if project is None:
            return
        default = self._settings.start_folder("w3c-export") / f"{project.name}-iiif"
        self.dialog = dialog = WebExportDialog(self._parent, default)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            request = dialog.request()
        finally:
            self.dialog = None
        self._settings.remember_folder("w3c-export", request.folder.parent)

        def work(progress: Any, cancel: Any) -> Any:
            from engine.webannotation.export import export_web_annotations  # noqa: PLC0415

            return export_web_annotations(project, request.folder, base_url=request.base_url,
                                          include_proposals=request.include_proposals, overwrite=True,
                                          progress=progress, cancel=cancel)

        self._jobs.submit("Exporting IIIF with Web Annotations", work, lambda done: self._notes.result(done.summary()))
