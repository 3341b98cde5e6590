"""The neighbours of the open page, read and outlined ahead, so that stepping through pages shows their
shapes at once (a page may hold thousands).

Whatever changes a page's annotations drops what was read of it (and a change anywhere drops all), and a
read that was under way when something changed is not kept: what is shown is never older than an edit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from engine.annotations import AnnotationRecord, annotations_of
from engine.project import Project
from gui.canvas.shape_layer import LayerContents, layer_contents
from gui.workers import JobRunner

PageShapes = tuple[list[AnnotationRecord], LayerContents]
KEPT = 2  # the page before and the page after


def read_page(project: Project, image_id: int, colours: dict[int, str], cancel: Any = None) -> PageShapes:
    """A page's annotations, and their outlines, mask overlays and grid for the shape layer (off the UI
    thread)."""
    records = annotations_of(project, image_id)
    return records, layer_contents(records, colours, cancel)


class PagesAhead:
    def __init__(self, jobs: JobRunner) -> None:
        self._jobs = jobs
        self._pages: OrderedDict[int, tuple[tuple[tuple[int, str], ...], PageShapes]] = OrderedDict()
        self._generation = 0
        self._job: Any = None

    def holds(self, image_id: int) -> bool:
        return image_id in self._pages

    def take(self, image_id: int, colours: dict[int, str]) -> PageShapes | None:
        """What was read ahead of this page (with these category colours), handed over once."""
        entry = self._pages.pop(image_id, None)
        return entry[1] if entry is not None and entry[0] == _key(colours) else None

    def forget(self, image_id: int | None = None) -> None:
        """Drop what was read of a page (``None``: of every page), and any read under way."""
        self._generation += 1
        self.stop_reading()
        if image_id is None:
            self._pages.clear()
        else:
            self._pages.pop(image_id, None)

    def stop_reading(self) -> None:
        """Cancel a read under way: the curator went elsewhere, and it would slow the page they opened."""
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def read_ahead(self, project: Project, image_ids: list[int], colours: dict[int, str]) -> None:
        wanted = [image_id for image_id in image_ids if image_id not in self._pages]
        if not wanted:
            return
        self.stop_reading()
        generation = self._generation

        def read(progress: Any, cancel: Any) -> list[tuple[int, PageShapes]]:
            found = []
            for image_id in wanted:
                cancel.raise_if_cancelled()
                found.append((image_id, read_page(project, image_id, colours, cancel)))
            return found

        def keep(found: list[tuple[int, PageShapes]]) -> None:
            if generation != self._generation:
                return  # something changed while reading: what was read may be stale
            for image_id, shapes in found:
                self._pages[image_id] = (_key(colours), shapes)
            while len(self._pages) > KEPT:
                self._pages.popitem(last=False)

        self._job = self._jobs.submit("Reading the next pages' annotations", read, keep, visible=False,
                                      announce_cancel=False)


def _key(colours: dict[int, str]) -> tuple[tuple[int, str], ...]:
    return tuple(sorted(colours.items()))
