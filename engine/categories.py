"""The label taxonomy: finding and creating categories by name."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.errors import MarginaliaError
from engine.paths import displayable
from engine.project import Project
from engine.store.schema import Annotation, Category

# Distinguishable on scans of paper and paint alike, and for colour-blind eyes
# (Okabe-Ito first, then Tableau).
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1",
    "#FF9DA7", "#9C755F",
)
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


MAX_NAME_LENGTH = 200


def normalise_name(name: str) -> str:
    """Names compare in Unicode NFC with outer spaces removed: "Zierinitiale" is one category. A name with a
    control character (a NUL, a line break) is refused: PAGE and ALTO, XML both, cannot hold one."""
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise MarginaliaError("A category needs a name.")
    if any(unicodedata.category(character) == "Cc" for character in cleaned):
        raise MarginaliaError(f"The category name “{displayable(cleaned)}” holds a control character (such as a NUL "
                              "or a line break), which no export format can hold.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise MarginaliaError(f"A category name may be {MAX_NAME_LENGTH} characters long; this one has "
                              f"{len(cleaned):,} ({cleaned[:40]}…).")
    return cleaned


def valid_colour(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and _HEX_COLOUR.match(value) else None


def next_colour(session: Session) -> str:
    count = session.scalar(select(func.count()).select_from(Category)) or 0
    return PALETTE[count % len(PALETTE)]


def find_category(session: Session, name: str) -> Category | None:
    return session.scalars(select(Category).where(Category.name == normalise_name(name))).first()


def get_or_create_category(
    session: Session, name: str, *, colour: str | None = None, parent: Category | None = None
) -> tuple[Category, bool]:
    """The category called ``name``, created if missing; the flag says whether it was created."""
    existing = find_category(session, name)
    if existing is not None:
        return existing, False
    category = Category(
        name=normalise_name(name), colour=valid_colour(colour) or next_colour(session), parent=parent
    )
    session.add(category)
    session.flush()
    return category, True


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    id: int
    name: str
    colour: str
    parent_id: int | None
    annotation_count: int = 0


def _as_record(category: Category, count: int = 0) -> CategoryRecord:
    return CategoryRecord(category.id, category.name, category.colour, category.parent_id, count)


def list_categories(project: Project) -> list[CategoryRecord]:
    """All categories in creation order (which is also hotkey order), with usage counts."""
    counts = (select(Annotation.category_id, func.count().label("n"))
              .group_by(Annotation.category_id).subquery())
    with project.unit_of_work() as session:
        rows = session.execute(
            select(Category, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.category_id == Category.id).order_by(Category.id)
        )
        return [_as_record(category, count) for category, count in rows]


def category_counts(project: Project, category_ids: set[int]) -> dict[int, int]:
    """How many annotations each of these categories has: after an edit only the categories it touched
    are counted (through the category index), not every annotation of the project."""
    if not category_ids:
        return {}
    with project.unit_of_work() as session:
        found = dict(session.execute(select(Annotation.category_id, func.count())
                                     .where(Annotation.category_id.in_(category_ids))
                                     .group_by(Annotation.category_id)).all())
    return {category_id: found.get(category_id, 0) for category_id in category_ids}


def add_category(project: Project, name: str, colour: str | None = None) -> CategoryRecord:
    with project.unit_of_work() as session:
        if find_category(session, name) is not None:
            raise MarginaliaError(f"A category called '{normalise_name(name)}' already exists.")
        category, _ = get_or_create_category(session, name, colour=colour)
        return _as_record(category)


def update_category(
    project: Project, category_id: int, *, name: str | None = None, colour: str | None = None
) -> CategoryRecord:
    """Rename and/or recolour; returns the record as it was before (for undo)."""
    with project.unit_of_work() as session:
        category = session.get_one(Category, category_id)
        before = _as_record(category)
        if name is not None:
            clash = find_category(session, name)
            if clash is not None and clash.id != category_id:
                raise MarginaliaError(f"A category called '{normalise_name(name)}' already exists.")
            category.name = normalise_name(name)
        if colour is not None:
            category.colour = valid_colour(colour) or category.colour
        return before


@dataclass(frozen=True, slots=True)
class RemovedCategory:
    """What deleting or merging away a category changed, so that undo can put it back."""

    record: CategoryRecord
    moved_annotation_ids: tuple[int, ...]
    orphaned_child_ids: tuple[int, ...]


def merge_category(project: Project, source_id: int, target_id: int) -> RemovedCategory:
    """Move every annotation of ``source`` to ``target`` and remove ``source``."""
    if source_id == target_id:
        raise MarginaliaError("A category cannot be merged into itself.")
    with project.unit_of_work() as session:
        source = session.get_one(Category, source_id)
        session.get_one(Category, target_id)
        moved = tuple(session.scalars(select(Annotation.id).where(Annotation.category_id == source_id)))
        session.execute(update(Annotation).where(Annotation.category_id == source_id)
                        .values(category_id=target_id, version=Annotation.version + 1))
        return _remove(session, source, moved)


def delete_category(project: Project, category_id: int) -> RemovedCategory:
    """Delete an unused category; one in use must be merged into another instead."""
    with project.unit_of_work() as session:
        category = session.get_one(Category, category_id)
        used = session.scalar(select(func.count()).where(Annotation.category_id == category_id)) or 0
        if used:
            raise MarginaliaError(
                f"'{category.name}' is used by {used} annotation(s); merge it into another "
                "category instead, so that no annotation is lost."
            )
        return _remove(session, category, ())


def _remove(session: Session, category: Category, moved: tuple[int, ...]) -> RemovedCategory:
    children = tuple(session.scalars(select(Category.id).where(Category.parent_id == category.id)))
    removed = RemovedCategory(_as_record(category), moved, children)
    session.delete(category)
    return removed


def restore_category(project: Project, removed: RemovedCategory) -> None:
    """Undo a delete or merge: the category returns under its old id, with its annotations."""
    record = removed.record
    with project.unit_of_work() as session:
        session.add(Category(id=record.id, name=record.name, colour=record.colour,
                             parent_id=record.parent_id))
        session.flush()
        if removed.moved_annotation_ids:
            session.execute(update(Annotation).where(Annotation.id.in_(removed.moved_annotation_ids))
                            .values(category_id=record.id, version=Annotation.version + 1))
        if removed.orphaned_child_ids:
            session.execute(update(Category).where(Category.id.in_(removed.orphaned_child_ids))
                            .values(parent_id=record.id))

