"""Undoable edits. Each command writes to the project at once (autosave) in
``redo`` and restores the previous state in ``undo``; a command whose first
``redo`` fails marks itself obsolete, so it never enters the undo history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtGui import QUndoCommand

from engine import annotations as store
from engine import categories as taxonomy
from engine.annotations import AnnotationRecord, Geometry, ReviewState
from engine.categories import CategoryRecord, RemovedCategory
from engine.errors import MarginaliaError, StaleEditError
from engine.metadata import set_image_field
from engine.project import Project
from engine.store.types import AnnotationStatus
from gui.events import ProjectEvents


class VersionBook:
    """Each annotation's version as this window last saw it (the open page's records, its own writes), and as its
    own writes last left it. A first edit is made on what the curator saw; an undo or redo on what this window
    left, so that one is refused when someone else has changed the row since, even after the page has shown
    their change. An annotation it knows nothing of is not checked."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._left: dict[int, int] = {}

    def expect(self, ids: list[int], *, own_writes: bool) -> dict[int, int]:
        known = self._left if own_writes else self._seen
        return {annotation_id: known[annotation_id] for annotation_id in ids if annotation_id in known}

    def note_written(self, versions: dict[int, int]) -> None:
        self._seen.update(versions)
        self._left.update(versions)

    def note_seen(self, records: list[AnnotationRecord]) -> None:
        self._seen.update((record.id, record.version) for record in records)


@dataclass(frozen=True)
class EditContext:
    """What every edit needs: the project, who edits, and whom to tell."""

    project: Project
    events: ProjectEvents
    curator: str
    session_id: int | None
    report_error: Callable[[str], None]
    # What this window last saw or wrote of each annotation: an edit of one that someone else has changed since
    # is refused.
    versions: VersionBook = field(default_factory=VersionBook)
    # This window, among all windows on the project (a curator may have two): whose page leases are whose.
    client: str = field(default_factory=lambda: uuid.uuid4().hex)


class _Command(QUndoCommand):
    def __init__(self, context: EditContext, text: str) -> None:
        super().__init__(text)
        self.ctx = context
        self._done_once = False

    def redo(self) -> None:
        try:
            self.apply(first_time=not self._done_once)
            self._done_once = True
        except MarginaliaError as error:
            self.setObsolete(True)
            self.ctx.report_error(str(error))
        self.announce()

    def undo(self) -> None:
        try:
            self.revert()
        except StaleEditError as error:
            # Someone changed these annotations after this edit: undoing it would undo their work too. The step
            # leaves the history (the stack drops an obsolete command), and the page shows their version.
            self.setObsolete(True)
            self.ctx.report_error(str(error).replace("Not saved:", "Cannot undo:", 1))
        self.announce()

    def apply(self, *, first_time: bool) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError

    def announce(self) -> None:
        raise NotImplementedError


class _AnnotationCommand(_Command):
    def __init__(self, context: EditContext, text: str, image_id: int) -> None:
        super().__init__(context, text)
        self.image_id = image_id
        self._pending: dict[int, int] = {}

    def expected(self, ids: list[int]) -> dict[int, int]:
        """The versions a write of ``ids`` is made on: the first time, what the curator saw; an undo or a redo,
        what this window's own last write left."""
        return self.ctx.versions.expect(ids, own_writes=self._done_once)

    def left(self) -> dict[int, int]:
        """A dict for the versions this write leaves (the engine fills it), noted in the book when the command
        announces itself; a write that fails leaves it empty."""
        versions: dict[int, int] = {}
        self._pending = versions
        return versions

    def announce(self) -> None:
        if self._pending:
            self.ctx.versions.note_written(self._pending)
            self._pending = {}
        self.ctx.events.annotations_edited.emit(self.image_id, self.touched())

    def touched(self) -> list[int]:
        """The annotations this command creates, changes or deletes (views update just these: a page with
        hundreds stays quick to edit)."""
        raise NotImplementedError


class CreateAnnotation(_AnnotationCommand):
    def __init__(self, context: EditContext, image_id: int, category_id: int, geometry: Geometry,
                 label: str, provenance: store.Provenance | None = None) -> None:
        super().__init__(context, f"Draw {label}", image_id)
        self._category_id = category_id
        self._geometry = geometry
        self._provenance = provenance
        self.record: AnnotationRecord | None = None

    def apply(self, *, first_time: bool) -> None:
        if self.record is None:
            self.record = store.create_annotation(
                self.ctx.project, image_id=self.image_id, category_id=self._category_id,
                geometry=self._geometry, creator=self.ctx.curator, session_id=self.ctx.session_id,
                provenance=self._provenance)
        else:
            store.restore(self.ctx.project, [self.record])
        self.left()[self.record.id] = self.record.version

    def revert(self) -> None:
        assert self.record is not None
        store.delete_annotations(self.ctx.project, [self.record.id], expected=self.expected([self.record.id]))

    def touched(self) -> list[int]:
        return [self.record.id] if self.record is not None else []


class DeleteAnnotations(_AnnotationCommand):
    def __init__(self, context: EditContext, image_id: int, ids: list[int]) -> None:
        super().__init__(context, f"Delete {len(ids)} annotation(s)", image_id)
        self._ids = ids
        self._records: list[AnnotationRecord] = []

    def apply(self, *, first_time: bool) -> None:
        self._records = store.delete_annotations(self.ctx.project, self._ids, expected=self.expected(self._ids))

    def revert(self) -> None:
        store.restore(self.ctx.project, self._records)
        self.left().update((record.id, record.version) for record in self._records)

    def touched(self) -> list[int]:
        return list(self._ids)


class EditGeometry(_AnnotationCommand):
    def __init__(self, context: EditContext, image_id: int, annotation_id: int, geometry: Geometry) -> None:
        super().__init__(context, "Reshape annotation", image_id)
        self._id = annotation_id
        self._geometry = geometry
        self._before: AnnotationRecord | None = None

    def apply(self, *, first_time: bool) -> None:
        expected = self.expected([self._id])
        if self._before is None:
            (self._before,) = store.get_annotations(self.ctx.project, [self._id])
        after = store.update_geometry(self.ctx.project, self._id, self._geometry, editor=self.ctx.curator,
                                      expected=expected)
        self.left()[after.id] = after.version

    def revert(self) -> None:
        assert self._before is not None
        store.put_back(self.ctx.project, self._before, editor=self.ctx.curator, expected=self.expected([self._id]),
                       versions=self.left())

    def touched(self) -> list[int]:
        return [self._id]


class SetCategory(_AnnotationCommand):
    def __init__(self, context: EditContext, image_id: int, ids: list[int], category: CategoryRecord) -> None:
        super().__init__(context, f"Set category to {category.name}", image_id)
        self._new = {annotation_id: category.id for annotation_id in ids}
        self._old: dict[int, int] = {}

    def apply(self, *, first_time: bool) -> None:
        self._old = store.set_category(self.ctx.project, self._new, editor=self.ctx.curator,
                                       expected=self.expected(list(self._new)), versions=self.left())

    def revert(self) -> None:
        store.set_category(self.ctx.project, self._old, editor=self.ctx.curator,
                           expected=self.expected(list(self._old)), versions=self.left())

    def touched(self) -> list[int]:
        return list(self._new)


class SetText(_AnnotationCommand):
    def __init__(self, context: EditContext, image_id: int, annotation_id: int, text: str) -> None:
        super().__init__(context, "Transcribe", image_id)
        self._new: dict[int, str | None] = {annotation_id: text}
        self._old: dict[int, str | None] = {}

    def apply(self, *, first_time: bool) -> None:
        self._old = store.set_text(self.ctx.project, self._new, editor=self.ctx.curator,
                                   expected=self.expected(list(self._new)), versions=self.left())

    def revert(self) -> None:
        store.set_text(self.ctx.project, self._old, editor=self.ctx.curator, expected=self.expected(list(self._old)),
                       versions=self.left())

    def touched(self) -> list[int]:
        return list(self._new)


class Review(_AnnotationCommand):
    """Accept or reject; a paragraph's or line's proposed children (lines, words) go with it, in the same
    undoable step. Children already reviewed keep their own decision."""

    def __init__(self, context: EditContext, image_id: int, ids: list[int], status: AnnotationStatus) -> None:
        verb = {"accepted": "Accept", "rejected": "Reject"}.get(status.value, "Review")
        children = store.descendants(context.project, ids, AnnotationStatus.PROPOSED)
        with_children = f" with {len(children)} line(s)/word(s) in them" if children else ""
        super().__init__(context, f"{verb} {len(ids)} annotation(s){with_children}", image_id)
        self._ids = list(ids) + [child for child in children if child not in ids]
        self._status = status
        self._old: dict[int, ReviewState] = {}

    def apply(self, *, first_time: bool) -> None:
        self._old = store.review(self.ctx.project, self._ids, self._status, reviewer=self.ctx.curator,
                                 session_id=self.ctx.session_id, expected=self.expected(self._ids),
                                 versions=self.left())

    def revert(self) -> None:
        store.restore_review(self.ctx.project, self._old, editor=self.ctx.curator,
                             expected=self.expected(list(self._old)), versions=self.left())

    def touched(self) -> list[int]:
        return list(self._ids)


class _CategoryCommand(_Command):
    def announce(self) -> None:
        self.ctx.events.categories_changed.emit()


class AddCategory(_CategoryCommand):
    def __init__(self, context: EditContext, name: str, colour: str | None = None) -> None:
        super().__init__(context, f"Add category {name}")
        self._name = name
        self._colour = colour
        self.record: CategoryRecord | None = None

    def apply(self, *, first_time: bool) -> None:
        if self.record is None:
            self.record = taxonomy.add_category(self.ctx.project, self._name, self._colour)
        else:
            taxonomy.restore_category(self.ctx.project, RemovedCategory(self.record, (), ()))

    def revert(self) -> None:
        assert self.record is not None
        taxonomy.delete_category(self.ctx.project, self.record.id)


class UpdateCategory(_CategoryCommand):
    def __init__(self, context: EditContext, category_id: int, *, name: str | None = None,
                 colour: str | None = None) -> None:
        super().__init__(context, "Rename category" if name else "Recolour category")
        self._id, self._name, self._colour = category_id, name, colour
        self._before: CategoryRecord | None = None

    def apply(self, *, first_time: bool) -> None:
        self._before = taxonomy.update_category(self.ctx.project, self._id, name=self._name,
                                                colour=self._colour)

    def revert(self) -> None:
        assert self._before is not None
        taxonomy.update_category(self.ctx.project, self._id, name=self._before.name,
                                 colour=self._before.colour)

    def announce(self) -> None:
        super().announce()
        # Shapes on the canvas take the new colour.
        self.ctx.events.annotations_changed.emit(-1)


class RemoveCategory(_CategoryCommand):
    """Delete an unused category, or merge one into another (``target_id``)."""

    def __init__(self, context: EditContext, category: CategoryRecord, target: CategoryRecord | None) -> None:
        text = f"Merge {category.name} into {target.name}" if target else f"Delete category {category.name}"
        super().__init__(context, text)
        self._id = category.id
        self._target = target.id if target else None
        self._removed: RemovedCategory | None = None

    def apply(self, *, first_time: bool) -> None:
        if self._target is None:
            self._removed = taxonomy.delete_category(self.ctx.project, self._id)
        else:
            self._removed = taxonomy.merge_category(self.ctx.project, self._id, self._target)

    def revert(self) -> None:
        assert self._removed is not None
        taxonomy.restore_category(self.ctx.project, self._removed)

    def announce(self) -> None:
        super().announce()
        self.ctx.events.annotations_changed.emit(-1)


class EditMetadata(_Command):
    def __init__(self, context: EditContext, image_id: int, field: str, value: str) -> None:
        super().__init__(context, f"Edit {field}")
        self._image_id, self._field, self._value = image_id, field, value
        self._old = ""

    def apply(self, *, first_time: bool) -> None:
        self._old = set_image_field(self.ctx.project, self._image_id, self._field, self._value)

    def revert(self) -> None:
        set_image_field(self.ctx.project, self._image_id, self._field, self._old)

    def announce(self) -> None:
        self.ctx.events.image_changed.emit(self._image_id)
