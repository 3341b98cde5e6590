"""Vectors in the project database (the truth the search index is built from)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import String, cast, delete, func, or_, select

from engine.errors import MarginaliaError
from engine.project import Project
from engine.store.schema import Annotation, Image, Vector
from engine.store.types import AnnotationStatus


@dataclass(frozen=True, slots=True)
class NewVector:
    image_id: int
    annotation_id: int | None
    content: str
    vector: np.ndarray  # [D] float32, unit length


def pack(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")


def page_content(sha256: str, page_index: int) -> str:
    return f"{sha256}:p{page_index}"


def pages_to_embed(project: Project, model_id: str) -> list[Image]:
    """Pages without a current vector for ``model_id`` (new, or whose file content changed)."""
    with project.unit_of_work() as session:
        have = {(image_id, content) for image_id, content in session.execute(
            select(Vector.image_id, Vector.content).where(Vector.model_id == model_id,
                                                           Vector.annotation_id.is_(None)))}
        images = session.scalars(select(Image).order_by(Image.id)).all()
        todo = [image for image in images if (image.id, page_content(image.sha256, image.page_index)) not in have]
        session.expunge_all()
        return todo


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of a project a model's search index covers."""

    pages: int
    pages_indexed: int  # pages whose vector matches their current content
    regions_indexed: int

    @property
    def complete(self) -> bool:
        return self.pages_indexed == self.pages


def index_coverage(project: Project, model_id: str) -> Coverage:
    with project.unit_of_work() as session:
        pages = session.scalar(select(func.count(Image.id))) or 0
        current = Vector.content == Image.sha256 + ":p" + cast(Image.page_index, String)
        indexed = session.scalar(select(func.count(Vector.id)).join(Image, Image.id == Vector.image_id).where(
            Vector.model_id == model_id, Vector.annotation_id.is_(None), current)) or 0
        regions = session.scalar(select(func.count(Vector.id)).where(
            Vector.model_id == model_id, Vector.annotation_id.is_not(None))) or 0
    return Coverage(int(pages), int(indexed), int(regions))


def store_vectors(project: Project, model_id: str, vectors: list[NewVector]) -> list[int]:
    """Insert vectors (replacing the model's earlier vector of the same page or region); their new ids."""
    with project.unit_of_work() as session:
        for item in vectors:
            session.execute(delete(Vector).where(
                Vector.model_id == model_id, Vector.image_id == item.image_id,
                Vector.annotation_id.is_(None) if item.annotation_id is None
                else Vector.annotation_id == item.annotation_id))
        rows = [Vector(model_id=model_id, image_id=item.image_id, annotation_id=item.annotation_id,
                       content=item.content, data=pack(item.vector)) for item in vectors]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def load_vectors(project: Project, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """All of a model's vectors: ids ``[N]`` int64 and vectors ``[N, D]`` float32."""
    with project.unit_of_work() as session:
        rows = session.execute(select(Vector.id, Vector.data).where(Vector.model_id == model_id)
                               .order_by(Vector.id)).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    return (np.array([row[0] for row in rows], dtype=np.int64),
            np.stack([unpack(row[1]) for row in rows]).astype(np.float32))


def vector_ids_of_model(project: Project, model_id: str) -> np.ndarray:
    """Every id of the model's vectors, sorted ``[N]`` int64 (cheap: the index's keys only)."""
    with project.unit_of_work() as session:
        found = session.scalars(select(Vector.id).where(Vector.model_id == model_id).order_by(Vector.id)).all()
    return np.asarray(found, dtype=np.int64)


def vectors_by_id(project: Project, ids: np.ndarray, *, chunk: int = 5_000) -> np.ndarray:
    """The vectors ``[n, D]`` float32 of ``ids`` ``[n]``, in that order (for re-ranking and index updates).

    A plain parameterised statement: re-ranking reads a thousand or more rows per query, and building
    SQLAlchemy rows for them costs more than SQLite's lookups.
    """
    wanted = [int(i) for i in ids]
    if not wanted:
        return np.zeros((0, 0), dtype=np.float32)
    found: dict[int, bytes] = {}
    with project.unit_of_work() as session:
        connection = session.connection()
        for start in range(0, len(wanted), chunk):
            part = tuple(wanted[start:start + chunk])
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"  # SQLite's sqlite3, psycopg
            marks = ",".join([mark] * len(part))
            found.update(connection.exec_driver_sql(f"SELECT id, data FROM vector WHERE id IN ({marks})",
                                                    part).all())
    missing = [i for i in wanted if i not in found]
    if missing:  # deleted while the search ran: the index follows the database on its next opening
        raise MarginaliaError(f"{len(missing)} indexed page(s) or region(s) were removed while searching; "
                              "search again.")
    return np.frombuffer(b"".join(found[i] for i in wanted), dtype="<f4").reshape(len(wanted), -1).astype(np.float32)


def vector_fingerprint(project: Project, model_id: str) -> tuple[int, int, int]:
    """(count, sum of ids, largest id): cheap to read, changes with any insert or delete."""
    with project.unit_of_work() as session:
        count, total, largest = session.execute(
            select(func.count(Vector.id), func.coalesce(func.sum(Vector.id), 0), func.coalesce(func.max(Vector.id), 0))
            .where(Vector.model_id == model_id)).one()
    return int(count), int(total), int(largest)


@dataclass(frozen=True, slots=True)
class VectorOwner:
    image_id: int
    annotation_id: int | None


def owners(project: Project, ids: list[int]) -> dict[int, VectorOwner]:
    with project.unit_of_work() as session:
        rows = session.execute(select(Vector.id, Vector.image_id, Vector.annotation_id)
                               .where(Vector.id.in_(ids))).all()
    return {row[0]: VectorOwner(row[1], row[2]) for row in rows}


def vector_of(project: Project, model_id: str, *, image_id: int | None = None,
              annotation_id: int | None = None) -> np.ndarray | None:
    with project.unit_of_work() as session:
        query = select(Vector.data).where(Vector.model_id == model_id)
        query = query.where(Vector.annotation_id == annotation_id) if annotation_id is not None else \
            query.where(Vector.image_id == image_id, Vector.annotation_id.is_(None))
        data = session.scalars(query.order_by(Vector.id.desc()).limit(1)).first()
    return unpack(data).copy() if data is not None else None


def vector_ids(project: Project, model_id: str, *, image_ids: set[int] | None, pages_only: bool) -> list[int] | None:
    """The ids a search may return, or ``None`` when every vector of the model qualifies."""
    with project.unit_of_work() as session:
        query = select(Vector.id).where(Vector.model_id == model_id)
        if pages_only:
            if image_ids is None and session.scalars(query.where(Vector.annotation_id.is_not(None)).limit(1)).first() \
                    is None:
                return None  # no regions indexed: nothing to leave out
            query = query.where(Vector.annotation_id.is_(None))
        else:
            # Regions count while their annotation stands accepted: one rejected (or turned back into a
            # proposal) leaves the results at once, before any re-indexing. Deleted ones go with their
            # vectors (the foreign key cascades).
            query = query.outerjoin(Annotation, Annotation.id == Vector.annotation_id).where(
                or_(Vector.annotation_id.is_(None), Annotation.status == AnnotationStatus.ACCEPTED))
        if image_ids is not None:
            query = query.where(Vector.image_id.in_(image_ids))
        return list(session.scalars(query))
