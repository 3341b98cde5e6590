"""File ▸ Import PAGE XML or ALTO…, and File ▸ Export PAGE XML / ALTO…: the heritage layout formats.

Both run as background jobs. Imported files go on the pages they describe; a file that fits no page for
certain is refused and named in the message, the others are imported. Exports write one file per page
into the chosen folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from engine.paths import displayable
from engine.project import Project
from gui.notifications import NotificationArea
from gui.settings import AppSettings
from gui.workers import JobRunner


class LayoutActions:
    def __init__(self, parent: QWidget, jobs: JobRunner, notifications: NotificationArea, settings: AppSettings,
                 project: Callable[[], Project | None], changed: Callable[[], None]) -> None:
        self._parent, self._jobs, self._notes, self._settings = parent, jobs, notifications, settings
        self._project, self._changed = project, changed

    def ask_import(self) -> None:
        if self._project() is None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self._parent, "Import PAGE XML or ALTO",
                                                str(self._settings.start_folder("layout")),
                                                "PAGE XML or ALTO (*.xml);;All files (*)")
        if paths:
            self._settings.remember_folder("layout", Path(paths[0]).parent)
            self.import_files([Path(path) for path in paths])

    def import_files(self, paths: list[Path]) -> None:
        project = self._project()
        if project is None:
            return
        from engine.layout.files import import_layout_files  # noqa: PLC0415 - lxml loads when first needed

        self._jobs.submit(f"Importing {len(paths)} layout file(s)",
                          lambda progress, cancel: import_layout_files(project, paths, "any",
                                                                       creator=self._settings.curator),
                          self._imported, background=True)

    def _imported(self, report: object) -> None:
        self._changed()
        refused = getattr(report, "refused", [])
        if refused:
            details = "\n".join(f"• {displayable(path.name)}: {reason}" for path, reason in refused[:5])
            self._notes.warning(f"{report.summary()}\n{details}")  # type: ignore[attr-defined]
        else:
            self._notes.result(report.summary())  # type: ignore[attr-defined]

    def ask_export(self, fmt: str) -> None:
        project = self._project()
        if project is None:
            return
        name = {"page": "PAGE XML", "alto": "ALTO"}[fmt]
        folder = QFileDialog.getExistingDirectory(self._parent, f"Export {name}: one file per page into…",
                                                  str(self._settings.start_folder("layout-export")))
        if folder:
            self._settings.remember_folder("layout-export", Path(folder))
            self.export_to(Path(folder), fmt)

    def export_to(self, folder: Path, fmt: str) -> None:
        project = self._project()
        if project is None:
            return
        from engine.layout.files import export_layouts  # noqa: PLC0415

        self._jobs.submit("Exporting page layouts",
                          lambda progress, cancel: export_layouts(project, folder, fmt, overwrite=True),
                          lambda done: self._notes.result(done.summary()), background=True)
