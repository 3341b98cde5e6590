"""Read-only views of a project: its images with annotation counts, and a summary."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from engine.errors import MarginaliaError, ProjectError
from engine.fileio import sha256_file
from engine.paths import displayable
from engine.project import Project
from engine.store.schema import Annotation, Category, Image
from engine.store.types import AnnotationStatus


@dataclass(frozen=True, slots=True)
class ImageRow:
    id: int
    path: str
    page_index: int
    page_count: int
    width: int
    height: int
    format: str
    title: str
    shelfmark: str
    date: str
    notes: str
    sha256: str
    accepted: int
    proposed: int
    rejected: int
    missing: bool
    category_ids: tuple[int, ...] = ()
    # The page's place among the file's pages (1-based). Not page_index + 1: a TIFF's
    # reduced-resolution copies are directories too, so frame numbers can skip.
    page_number: int = 1
    # The file is there but is no longer the one imported (replaced in place, edited):
    # its pages and annotations may not fit it any more.
    changed: bool = False

    @property
    def display_name(self) -> str:
        name = displayable(os.path.basename(self.path))
        return f"{name} — p. {self.page_number}" if self.page_count > 1 else name

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    name: str
    folder: str
    images: int
    missing_images: int
    changed_images: int
    categories: int
    accepted: int
    proposed: int
    rejected: int


def _count(status: AnnotationStatus) -> Any:
    return func.coalesce(func.sum(case((Annotation.status == status, 1), else_=0)), 0)


def list_images(project: Project, image_ids: list[int] | None = None) -> list[ImageRow]:
    """Images in import order, optionally only ``image_ids``, with their annotation counts."""
    query = (
        select(
            Image,
            _count(AnnotationStatus.ACCEPTED),
            _count(AnnotationStatus.PROPOSED),
            _count(AnnotationStatus.REJECTED),
        )
        .outerjoin(Annotation, Annotation.image_id == Image.id)
        .group_by(Image.id)
        .order_by(Image.id)
    )
    used = (select(Annotation.image_id, Annotation.category_id).distinct()
            .where(Annotation.status != AnnotationStatus.REJECTED))
    if image_ids is not None:
        query = query.where(Image.id.in_(image_ids))
        used = used.where(Annotation.image_id.in_(image_ids))
    with project.unit_of_work() as session:
        categories: dict[int, list[int]] = {}
        for image_id, category_id in session.execute(used):
            categories.setdefault(image_id, []).append(category_id)
        files = FileChecker()
        numbers = _page_numbers(session, image_ids)
        rows = [
            ImageRow(
                id=image.id, path=image.path, page_index=image.page_index,
                page_count=image.page_count, width=image.width, height=image.height,
                format=image.format, title=image.title, shelfmark=image.shelfmark,
                date=image.date, notes=image.notes, sha256=image.sha256,
                accepted=accepted, proposed=proposed, rejected=rejected,
                missing=(state := files.state(image.path, image.file_size, image.file_mtime,
                                              image.sha256)) == MISSING,
                changed=state == CHANGED,
                category_ids=tuple(sorted(categories.get(image.id, ()))),
                page_number=numbers.get((image.sha256, image.page_index), 1),
            )
            for image, accepted, proposed, rejected in session.execute(query)
        ]
    _remember_touched_files(project, files.touched)
    return rows


def _page_numbers(session: Session, image_ids: list[int] | None = None) -> dict[tuple[str, int], int]:
    """``(sha256, page_index) → 1-based page number`` for the pages of multi-page files (of the files of
    ``image_ids`` only, when given: the pages an edit touched are relisted without reading every page)."""
    numbers: dict[tuple[str, int], int] = {}
    counted: dict[str, int] = {}
    query = select(Image.sha256, Image.page_index).where(Image.page_count > 1)
    if image_ids is not None:
        query = query.where(Image.sha256.in_(select(Image.sha256).where(Image.id.in_(image_ids))))
    rows = session.execute(query.order_by(Image.sha256, Image.page_index))
    for sha256, page_index in rows:
        counted[sha256] = counted.get(sha256, 0) + 1
        numbers[(sha256, page_index)] = counted[sha256]
    return numbers


PRESENT, MISSING, CHANGED = "present", "missing", "changed"


class FileChecker:
    """Whether image files are still there and still the ones imported.

    One directory scan per folder (a 10,000-image project on a network share lists
    in a blink); a file is hashed only when its size is right but its time is not,
    which tells a copy that kept its content (``touched``) from a replacement.
    """

    def __init__(self) -> None:
        self._folders: dict[str, dict[str, tuple[int, float]]] = {}
        self._hashes: dict[str, str] = {}
        self.touched: dict[str, float] = {}  # same content, new modification time

    def state(self, path: str, size: int, mtime: float, sha256: str) -> str:
        folder, name = os.path.split(path)
        if folder not in self._folders:
            self._folders[folder] = _scan(folder)
        found = self._folders[folder].get(name)
        if found is None:
            return MISSING
        found_size, found_mtime = found
        if found_size != size:
            return CHANGED
        if abs(found_mtime - mtime) < 1e-3:
            return PRESENT
        if path not in self._hashes:
            try:
                self._hashes[path] = sha256_file(Path(path))
            except OSError:
                return MISSING
        if self._hashes[path] != sha256:
            return CHANGED
        self.touched[path] = found_mtime
        return PRESENT


def _scan(folder: str) -> dict[str, tuple[int, float]]:
    entries: dict[str, tuple[int, float]] = {}
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                try:
                    info = entry.stat()
                except OSError:
                    continue
                entries[entry.name] = (info.st_size, info.st_mtime)
    except OSError:
        pass
    return entries


def _remember_touched_files(project: Project, touched: dict[str, float]) -> None:
    """Store the new times of files whose content is unchanged, so they are not hashed again. Not in a team
    project: each computer sees the shared drive's times its own way, and would undo the others' correction."""
    if not touched or project.read_only or project.is_team:
        return
    try:
        with project.unit_of_work() as session:
            for path, mtime in touched.items():
                session.execute(update(Image).where(Image.path == path).values(file_mtime=mtime))
    except ProjectError:
        pass  # busy: they are checked again next time


def summarise(project: Project) -> ProjectSummary:
    rows = list_images(project)
    with project.unit_of_work() as session:
        categories = session.scalar(select(func.count()).select_from(Category)) or 0
    return ProjectSummary(
        name=project.name,
        folder=str(project.folder),
        images=len(rows),
        missing_images=sum(row.missing for row in rows),
        changed_images=sum(row.changed for row in rows),
        categories=categories,
        accepted=sum(row.accepted for row in rows),
        proposed=sum(row.proposed for row in rows),
        rejected=sum(row.rejected for row in rows),
    )


def readable_pages(project: Project, image_ids: list[int]) -> list[ImageRow]:
    """The pages ``image_ids`` names (in that order) for a model to read; refused, with an example, when
    any is missing or changed since import (a model must not read other content than was imported)."""
    rows = {row.id: row for row in list_images(project, image_ids)}
    pages = [rows[i] for i in image_ids if i in rows]
    unusable = [row for row in pages if row.missing or row.changed]
    if unusable:
        raise MarginaliaError(f"{len(unusable)} of the pages cannot be read as imported (missing or changed "
                              f"files), e.g. {unusable[0].display_name}; relink them or leave them out.")
    return pages
