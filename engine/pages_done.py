"""Pages a model already read and found nothing on: remembered so that running it again skips them.

A page where a model found something holds its proposals, which say it was read. A page where it found
nothing (a blank leaf, an engraving with no text) leaves no trace; without this record a resumed or
repeated run would read it again, every time.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from engine.fileio import write_atomically
from engine.inventory import ImageRow
from engine.project import Project
from engine.store.schema import Annotation, Category

SLICE = 1000  # pages a query names at once (SQLite's limit on bound values is far above)


def categories_found(project: Project, image_ids: list[int], model_id: str) -> dict[int, set[str]]:
    """The names of the categories ``model_id``'s annotations are in, for each page holding any: one query per
    ``SLICE`` pages (the estimate before a run asks this of a whole collection, on the window's thread)."""
    found: dict[int, set[str]] = {}
    with project.unit_of_work() as session:
        for start in range(0, len(image_ids), SLICE):
            for image_id, name in session.execute(
                    select(Annotation.image_id, Category.name).join(Category, Annotation.category_id == Category.id)
                    .where(Annotation.image_id.in_(image_ids[start:start + SLICE]),
                           Annotation.source_model == model_id).distinct()):
                found.setdefault(image_id, set()).add(name)
    return found


class NothingFound:
    """Pages where the model found nothing for a level (a blank page, an engraving): remembered by the
    page's content, model and weights, so that running again does not read them again."""

    def __init__(self, path: Path, model_id: str, checkpoint: str) -> None:
        self.path, self.prefix = path, f"{model_id}:{checkpoint[:16]}"
        try:
            self.known: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}

    def _key(self, row: ImageRow) -> str:
        return f"{self.prefix}:{row.sha256}:{row.page_index}"

    def levels(self, row: ImageRow) -> set[str]:
        return set(self.known.get(self._key(row), []))

    def remember(self, row: ImageRow, levels: set[str]) -> None:
        if levels:
            self.known[self._key(row)] = sorted(self.levels(row) | levels)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(self.known, indent=0).encode("utf-8"))
