"""A curator's labelling session: who, from when to when, and what they did."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from engine.project import Project
from engine.store.schema import Annotation, LabelSession
from engine.store.types import AnnotationStatus, SourceKind, utc_now


@dataclass(frozen=True, slots=True)
class SessionCounts:
    created: int
    accepted: int
    rejected: int


def start_session(project: Project, curator: str) -> int:
    with project.unit_of_work() as session:
        row = LabelSession(curator=curator.strip() or "Unknown curator")
        session.add(row)
        session.flush()
        return row.id


def end_session(project: Project, session_id: int) -> None:
    with project.unit_of_work() as session:
        row = session.get(LabelSession, session_id)
        if row is not None and row.ended_at is None:
            row.ended_at = utc_now()


def session_counts(project: Project, session_id: int) -> SessionCounts:
    with project.unit_of_work() as session:
        # Drawn by hand, or made with a model's help and saved at once (a SAM mask): both are the
        # curator's work. Proposals are counted when reviewed.
        drawn = or_(Annotation.source_kind == SourceKind.HUMAN,
                    and_(Annotation.source_kind == SourceKind.MODEL, Annotation.reviewed_session_id.is_(None),
                         Annotation.status == AnnotationStatus.ACCEPTED))
        created = session.scalar(
            select(func.count()).where(Annotation.session_id == session_id, drawn)
        ) or 0

        def reviewed(status: AnnotationStatus) -> int:
            return session.scalar(
                select(func.count()).where(Annotation.reviewed_session_id == session_id,
                                           Annotation.status == status)
            ) or 0

        return SessionCounts(created, reviewed(AnnotationStatus.ACCEPTED),
                             reviewed(AnnotationStatus.REJECTED))
