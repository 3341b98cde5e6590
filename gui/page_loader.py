"""Decoding the page being viewed, in worker processes, sharpest last.

The thumbnail shows at once; a preview of at most ``PREVIEW_SIDE`` pixels
follows; for larger pages the full-resolution page arrives through shared
memory and its pyramid is built off the UI thread. Pages too large to hold
(``engine.imaging.big_pages``) are never decoded whole: their tiles come from a
pyramid file in the project's cache, built once in a decoder process. Switching
pages cancels loads that are no longer wanted and frees the previous page's memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtGui import QImage

from engine.imaging.big_pages import ensure_pyramid, wants_pyramid
from engine.imaging.isolated import SharedPage, load_full_page_shared, load_page_isolated, shared_decode_pool
from engine.imaging.pyramid import MemoryPyramid, build_levels
from engine.imaging.vips import PyramidFile
from engine.jobs import CancelToken
from engine.inventory import ImageRow
from engine.paths import displayable
from gui.canvas.page_item import PREVIEW_SIDE, PageItem
from gui.canvas.qimage import to_qimage
from gui.workers import Job, JobRunner


class PageLoader:
    def __init__(self, jobs: JobRunner, on_failed: Callable[[str], None],
                 cache_dir: Callable[[], Path | None] = lambda: None) -> None:
        self._jobs = jobs
        self._cache_dir = cache_dir  # the open project's cache, for pyramid files
        self._on_failed = on_failed
        self._active: list[Job] = []
        self._page: PageItem | None = None
        self._shared: SharedPage | None = None
        self._after_shapes: list[Callable[[], None]] | None = None  # full resolution, held for the shapes
        self.on_loaded: Callable[[], None] | None = None  # called when the sharpest rendition is in

    def load(self, row: ImageRow, page: PageItem, *, after_shapes: bool = False) -> None:
        """Show the page's preview, then its full resolution; with ``after_shapes``, the full resolution
        waits for :meth:`shapes_shown`: on a laptop's two cores a dense page's shapes would otherwise wait for
        decoding that only matters once the curator zooms in."""
        self.cancel()
        self._page = page
        self._after_shapes = [] if after_shapes else None
        if row.missing:
            self._on_failed(f"The file of this page is missing: {displayable(row.path)}. Use File ▸ Relink "
                            "Moved Images… if it was moved.")
            return
        if row.changed:
            # Drawing its annotations over other pixels would be a silent wrong answer.
            self._on_failed(f"The file of this page was replaced or edited since it was imported: "
                            f"{displayable(row.path)}. Its annotations may no longer fit it, so it is not shown. "
                            "Put the original file back, or import the new file as a new page.")
            return
        path = Path(row.path)
        large = max(row.width, row.height) > PREVIEW_SIDE

        def preview(progress, cancel) -> QImage:  # noqa: ANN001
            # Any size from half the preview's up: a JPEG's decoder then halves it as it reads, at a quarter of
            # the cost of a full decode and a resize; the full resolution follows.
            return to_qimage(load_page_isolated(path, row.page_index, max_side=PREVIEW_SIDE,
                                                image_format=row.format, least_side=PREVIEW_SIDE // 2))

        cache_dir = self._cache_dir()
        tiled = large and cache_dir is not None and wants_pyramid(row.format, row.width, row.height)

        def preview_ready(image: QImage) -> None:
            self._preview_ready(page, image, final=not large)
            if tiled and page is self._page:
                # After the preview, not beside it: on a laptop's few cores the preview comes first.
                assert cache_dir is not None
                self._when_shapes_shown(lambda: self._load_tiles(row, page, path, cache_dir))

        self._active.append(self._jobs.submit(
            f"Opening {row.display_name}", preview, preview_ready,
            on_failure=self._on_failed, visible=False, announce_cancel=False))
        if large and not tiled:
            def full(progress, cancel) -> tuple[SharedPage, MemoryPyramid]:  # noqa: ANN001
                cancel.raise_if_cancelled()
                shared = load_full_page_shared(path, row.page_index, image_format=row.format)
                if cancel.cancelled or shared.image is None:
                    shared.release()
                    cancel.raise_if_cancelled()
                assert shared.image is not None
                return shared, MemoryPyramid(build_levels(shared.image))

            self._when_shapes_shown(lambda: self._active.append(self._jobs.submit(
                f"Loading full resolution of {row.display_name}", full,
                lambda result: self._levels_ready(page, *result), visible=True, announce_cancel=False)))

    def _when_shapes_shown(self, start: Callable[[], None]) -> None:
        if self._after_shapes is None:
            start()
        else:
            self._after_shapes.append(start)

    def shapes_shown(self) -> None:
        """The open page's shapes are on the canvas: what waited for them starts."""
        waiting, self._after_shapes = self._after_shapes or [], None
        for start in waiting:
            start()

    def _load_tiles(self, row: ImageRow, page: PageItem, path: Path, cache_dir: Path) -> None:
        def tiles(progress, cancel) -> PyramidFile:  # noqa: ANN001
            built = shared_decode_pool().submit(ensure_pyramid, path, row.page_index, row.format,
                                                row.sha256, cache_dir)
            return PyramidFile(_wait(built, cancel))

        self._active.append(self._jobs.submit(
            f"Preparing full resolution of {row.display_name}", tiles,
            lambda source: self._levels_ready(page, None, source), visible=True, announce_cancel=False))

    def cancel(self) -> None:
        self._after_shapes = None
        for job in self._active:
            job.cancel()
        self._active = []
        if self._page is not None and shiboken6.isValid(self._page):
            self._page.set_levels(None)
        self._page = None
        if self._shared is not None:
            self._shared.release()
            self._shared = None

    def _preview_ready(self, page: PageItem, image: QImage, *, final: bool) -> None:
        if page is self._page:
            page.add_preview(image)
            if final and self.on_loaded:
                self.on_loaded()

    def _levels_ready(self, page: PageItem, shared: SharedPage | None, levels: MemoryPyramid | PyramidFile) -> None:
        if page is not self._page:
            del levels
            if shared is not None:
                shared.release()  # the curator has moved on
            return
        self._shared = shared
        page.set_levels(levels)
        if self.on_loaded:
            self.on_loaded()


def _wait(future, cancel: CancelToken):  # noqa: ANN001, ANN202
    """A decoder process's result, giving up (not the process's work) within a fraction of a second of cancel."""
    while True:
        try:
            return future.result(timeout=0.2)
        except TimeoutError:
            cancel.raise_if_cancelled()
