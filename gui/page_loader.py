"""Decoding the page being viewed, in the background, sharpest last.

The thumbnail shows at once; a preview of at most ``PREVIEW_SIDE`` pixels
follows; for larger pages the full-resolution pyramid comes last. Switching
pages cancels loads that are no longer wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QImage

from engine.imaging.decode import load_page
from engine.imaging.pyramid import build_levels
from engine.inventory import ImageRow
from gui.canvas.page_item import PREVIEW_SIDE, PageItem
from gui.canvas.qimage import to_qimage
from gui.workers import Job, JobRunner


class PageLoader:
    def __init__(self, jobs: JobRunner, on_failed: Callable[[str], None]) -> None:
        self._jobs = jobs
        self._on_failed = on_failed
        self._active: list[Job] = []
        self._page: PageItem | None = None
        self.on_loaded: Callable[[], None] | None = None  # called when the sharpest rendition is in

    def load(self, row: ImageRow, page: PageItem) -> None:
        self.cancel()
        self._page = page
        if row.missing:
            self._on_failed(f"The file of this page is missing: {row.path}. Use File ▸ Relink… "
                            "if it was moved.")
            return
        path = Path(row.path)
        large = max(row.width, row.height) > PREVIEW_SIDE

        def preview(progress, cancel) -> QImage:  # noqa: ANN001
            return to_qimage(load_page(path, row.page_index, max_side=PREVIEW_SIDE,
                                       image_format=row.format))

        self._active.append(self._jobs.submit(
            f"Opening {row.display_name}", preview,
            lambda image: self._preview_ready(page, image, final=not large),
            on_failure=self._on_failed, visible=False))
        if large:
            def full(progress, cancel) -> list:  # noqa: ANN001
                cancel.raise_if_cancelled()
                levels = build_levels(load_page(path, row.page_index, image_format=row.format))
                cancel.raise_if_cancelled()
                return levels

            self._active.append(self._jobs.submit(
                f"Loading full resolution of {row.display_name}", full,
                lambda levels: self._levels_ready(page, levels), visible=True))

    def cancel(self) -> None:
        for job in self._active:
            job.cancel()
        self._active = []
        self._page = None

    def _preview_ready(self, page: PageItem, image: QImage, *, final: bool) -> None:
        if page is self._page:
            page.add_preview(image)
            if final and self.on_loaded:
                self.on_loaded()

    def _levels_ready(self, page: PageItem, levels: list) -> None:
        if page is self._page:
            page.set_levels(levels)
            if self.on_loaded:
                self.on_loaded()
