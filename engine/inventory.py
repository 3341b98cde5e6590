"""Read-only views of a project: its images with annotation counts, and a summary."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import case, func, select

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
    accepted: int
    proposed: int
    rejected: int
    missing: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    name: str
    folder: str
    images: int
    missing_images: int
    categories: int
    accepted: int
    proposed: int
    rejected: int


def _count(status: AnnotationStatus) -> Any:
    return func.coalesce(func.sum(case((Annotation.status == status, 1), else_=0)), 0)


def list_images(project: Project) -> list[ImageRow]:
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
    with project.unit_of_work() as session:
        return [
            ImageRow(
                id=image.id, path=image.path, page_index=image.page_index,
                page_count=image.page_count, width=image.width, height=image.height,
                format=image.format, title=image.title, shelfmark=image.shelfmark,
                accepted=accepted, proposed=proposed, rejected=rejected,
                missing=not os.path.exists(image.path),
            )
            for image, accepted, proposed, rejected in session.execute(query)
        ]


def summarise(project: Project) -> ProjectSummary:
    rows = list_images(project)
    with project.unit_of_work() as session:
        categories = session.scalar(select(func.count()).select_from(Category)) or 0
    return ProjectSummary(
        name=project.name,
        folder=str(project.folder),
        images=len(rows),
        missing_images=sum(row.missing for row in rows),
        categories=categories,
        accepted=sum(row.accepted for row in rows),
        proposed=sum(row.proposed for row in rows),
        rejected=sum(row.rejected for row in rows),
    )
