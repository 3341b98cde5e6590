"""Other curators' work, shown in this window as it is saved: a team project's change notices
(:mod:`engine.store.changes`) turned into the project events every view already follows.

Notices arrive on the listener's thread and are collected here on the UI thread for a tenth of a second, so a
burst (a colleague's bulk accept over fifty pages) updates each view once. A notice naming the annotations it
changed updates just those (the open page keeps its zoom, selection and everything else); one that names none
reads the page's annotations again; one after a lost connection refreshes everything.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from engine.project import Project
from engine.store.changes import Change
from gui.events import ProjectEvents

GATHER_MS = 100


class TeamChanges(QObject):
    _arrived = Signal(object)  # a Change, from the listener's thread

    def __init__(self, project: Project, events: ProjectEvents, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._events = events
        self._edited: dict[int, set[int]] = {}
        self._pages: set[int] = set()
        self._images: set[int] = set()
        self._categories = False
        self._everything = False
        self._timer = QTimer(self, singleShot=True, interval=GATHER_MS)
        self._timer.timeout.connect(self._tell)
        self._arrived.connect(self._gather)  # queued: emitted from the listener's thread
        self._listener = project.listen(self._arrived.emit)

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.listening.is_set()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self._timer.stop()

    def _gather(self, change: Change) -> None:
        if change.table == "*":
            self._everything = True
        elif change.table == "category":
            self._categories = True
        elif change.table == "image" and change.image_id is not None:
            self._images.add(change.image_id)
        elif change.image_id is not None and change.ids is not None and change.image_id not in self._pages:
            self._edited.setdefault(change.image_id, set()).update(change.ids)
        elif change.image_id is not None:
            self._pages.add(change.image_id)
            self._edited.pop(change.image_id, None)
        if not self._timer.isActive():
            self._timer.start()

    def _tell(self) -> None:
        edited, pages, images = self._edited, self._pages, self._images
        categories, everything = self._categories, self._everything
        self._edited, self._pages, self._images, self._categories, self._everything = {}, set(), set(), False, False
        if categories or everything:
            self._events.categories_changed.emit()
        if everything:
            self._events.annotations_changed.emit(-1)
            return
        for image_id in images:
            self._events.image_changed.emit(image_id)
        for image_id in pages:
            self._events.annotations_changed.emit(image_id)
        for image_id, ids in edited.items():
            self._events.annotations_edited.emit(image_id, sorted(ids))
