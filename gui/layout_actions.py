"""File ▸ Import PAGE XML or ALTO…, and File ▸ Export PAGE XML / ALTO…: the heritage layout formats.

Both run as background jobs. Imported files go on the pages they describe; a file that fits no page for
certain is refused and named in the message, the others are imported. Exports write one file per page
into the chosen folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from engine.paths import displayable
from engine.project import Project
from gui.notifications import NotificationArea
from gui.settings import AppSettings
from gui.workers import JobRunner

if TYPE_CHECKING:
    from engine.layout.files import LayoutFilesReport  # lxml loads when first needed, not with the window


class LayoutActions:
    def __init__(self, parent: QWidget, jobs: JobRunner, notifications: NotificationArea, settings: AppSettings,
                 project: Callable[[], Project | None], changed: Callable[[], None],
                 open_page: Callable[[], int | None] = lambda: None,
                 show_page: Callable[[int], object] = lambda image_id: None) -> None:
        self._parent, self._jobs, self._notes, self._settings = parent, jobs, notifications, settings
        self._project, self._changed, self._open_page, self._show_page = project, changed, open_page, show_page

    def ask_import(self) -> None:
        if self._project() is None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self._parent, "Import PAGE XML or ALTO",
                                                str(self._settings.start_folder("layout")),
                                                "PAGE XML or ALTO (*.xml);;All files (*)")
        if paths:
            self._settings.remember_folder("layout", Path(paths[0]).parent)
            self.import_files([Path(path) for path in paths])

    def import_files(self, paths: list[Path], image_id: int | None = None) -> None:
        project = self._project()
        if project is None:
            return
        from engine.layout.files import import_layout_files  # noqa: PLC0415 - lxml loads when first needed

        self._jobs.submit(f"Importing {len(paths)} layout file(s)",
                          lambda progress, cancel: import_layout_files(project, paths, "any", image_id=image_id,
                                                                       creator=self._settings.curator),
                          self._imported, background=True)

    def _imported(self, report: LayoutFilesReport) -> None:
        self._changed()
        pages = {done.image_id for _, done, _ in report.imported}
        if len(pages) == 1:  # one page's layout: show that page, not whichever was open
            self._show_page(pages.pop())
        if report.refused:
            details = "\n".join(f"• {displayable(path.name)}: {reason}" for path, reason in report.refused[:5])
            # A file several pages fit is one choice away from imported: the choice is offered, not only named.
            choices = [(f"Choose the page for {displayable(path.name)}…",
                        lambda path=path, pages=pages: self.choose_page(path, pages))
                       for path, pages in list(report.ambiguous.items())[:3]]
            self._notes.show_message("warning", f"{report.summary()}\n{details}", choices)
        else:
            self._notes.result(report.summary())

    def choose_page(self, path: Path, pages: list[int]) -> None:
        """Ask which of ``pages`` the file describes (the open page first, if it is one), then import it there."""
        project = self._project()
        if project is None:
            return
        from engine.inventory import list_images  # noqa: PLC0415

        rows = list_images(project, pages)
        labels = [f"{row.id}: {displayable(row.path)}" + (f" (page {row.page_number})" if row.page_count > 1 else "")
                  for row in rows]
        open_page = self._open_page()
        current = next((index for index, row in enumerate(rows) if row.id == open_page), 0)
        chosen, ok = QInputDialog.getItem(self._parent, "Which page?",
                                          f"{displayable(path.name)} could describe these pages. Which is it?",
                                          labels, current, False)
        if ok and chosen in labels:
            self.import_files([path], image_id=rows[labels.index(chosen)].id)

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
