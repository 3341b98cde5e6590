"""Signals that tell every view what changed in the open project."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class ProjectEvents(QObject):
    annotations_changed = Signal(int)  # image id, or -1 for "anything may have changed"
    annotations_edited = Signal(int, list)  # image id, ids of the annotations touched
    categories_changed = Signal()
    image_changed = Signal(int)  # image id (metadata)
