"""File ▸ Import from IIIF…: a digitised book from its manifest's address (or a saved manifest file).

The import is a job with progress and Cancel: pages already fetched stay, and importing again continues. A
collection's address offers its manifests to choose from; canvases that could not be had are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from engine.project import Project
from gui.notifications import NotificationArea
from gui.workers import JobRunner

if TYPE_CHECKING:
    from engine.iiif.importer import IiifImportReport
    from engine.iiif.manifest import Collection

CHOICES_SHOWN = 5  # manifests of a collection offered as buttons; the message names how many there are


class IiifActions:
    def __init__(self, parent: QWidget, jobs: JobRunner, notifications: NotificationArea,
                 project: Callable[[], Project | None], changed: Callable[[], None]) -> None:
        self._parent, self._jobs, self._notes = parent, jobs, notifications
        self._project, self._changed = project, changed

    def ask_import(self) -> None:
        if self._project() is None:
            self._notes.warning("Open or create a project first.")
            return
        address, chosen = QInputDialog.getText(
            self._parent, "Import from IIIF", "The manifest's address (https://…/manifest.json) or a saved "
            "manifest file:", QLineEdit.EchoMode.Normal, "")
        if chosen and address.strip():
            self.import_manifest(address.strip())

    def import_manifest(self, source: str) -> None:
        project = self._project()
        if project is None:
            return

        def work(progress: Any, cancel: Any) -> IiifImportReport | Collection:
            from engine.iiif.importer import CollectionGiven, import_manifest  # noqa: PLC0415

            try:
                return import_manifest(project, source, progress=progress, cancel=cancel)
            except CollectionGiven as given:
                return given.collection

        self._jobs.submit("Importing from IIIF", work, self._done)

    def _done(self, outcome: IiifImportReport | Collection) -> None:
        from engine.iiif.manifest import Collection  # noqa: PLC0415

        if isinstance(outcome, Collection):
            manifests = [entry for entry in outcome.items if entry.kind == "Manifest"]
            choices = [(f"Import {entry.label or entry.id}", lambda entry=entry: self.import_manifest(entry.id))
                       for entry in manifests[:CHOICES_SHOWN]]
            more = f" (the first {CHOICES_SHOWN} are offered here)" if len(manifests) > CHOICES_SHOWN else ""
            self._notes.show_message("info", f"{outcome.label or outcome.id} is a IIIF collection of "
                                             f"{len(manifests)} manifest(s){more}: choose one to import.", choices)
            return
        self._changed()
        problems = [f"• {label}: {reason}" for label, reason in outcome.failed[:5]] + [
            f"• {reason}" for reason in outcome.left_out[:3]]
        if problems:
            self._notes.show_message("warning", outcome.summary() + "\n" + "\n".join(problems))
        else:
            self._notes.result(outcome.summary())
