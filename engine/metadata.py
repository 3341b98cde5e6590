"""Editing an image's descriptive metadata (title, shelfmark, date, rights, notes)."""

from __future__ import annotations

from engine.errors import MarginaliaError
from engine.project import Project
from engine.store.schema import Image

EDITABLE_FIELDS = ("title", "shelfmark", "date", "rights", "notes")


def set_image_field(project: Project, image_id: int, field: str, value: str) -> str:
    """Set one field; return its previous value (for undo)."""
    if field not in EDITABLE_FIELDS:
        raise MarginaliaError(f"'{field}' is not an editable image field.")
    with project.unit_of_work() as session:
        image = session.get_one(Image, image_id)
        before = getattr(image, field)
        setattr(image, field, value)
        return before
