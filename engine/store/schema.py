"""The project database schema (SQLAlchemy 2.0 typed models).

Changing anything here needs a new Alembic revision in ``migrations/versions``;
``tests/test_store.py`` fails when the models and the migrations disagree.

Geometry conventions (all in pixels of the image as displayed, i.e. after its
EXIF/TIFF orientation has been applied, origin top-left, COCO style):

* ``bbox_*`` — the axis-aligned box ``x, y, w, h``.
* ``polygons`` — a list of parts, each ``{"exterior": [x0, y0, x1, y1, ...],
  "holes": [[x0, y0, ...], ...]}``. COCO polygons cannot express holes; such
  shapes are exported as RLE.
* ``rle`` — a COCO compressed RLE ``{"size": [height, width], "counts": str}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.store.types import (
    AnnotationStatus,
    FilePath,
    SourceKind,
    UTCDateTime,
    utc_now,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ProjectInfo(Base):
    """The single row describing the project itself."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Image(Base):
    """One page of a scan file. A multi-page TIFF gives one row per page."""

    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("sha256", "page_index", name="file_page"),
        CheckConstraint("width > 0 AND height > 0", name="positive_size"),
        CheckConstraint("page_index >= 0", name="page_index_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(FilePath, index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    page_index: Mapped[int] = mapped_column(default=0)
    page_count: Mapped[int] = mapped_column(default=1)
    width: Mapped[int]
    height: Mapped[int]
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    orientation: Mapped[int] = mapped_column(default=1)
    file_size: Mapped[int]
    file_mtime: Mapped[float]
    title: Mapped[str] = mapped_column(Text, default="")
    shelfmark: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[str] = mapped_column(String(100), default="")
    rights: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    added_at: Mapped[datetime] = mapped_column(default=utc_now)

    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )


class Category(Base):
    """A label of the project's taxonomy; ``parent`` makes it a hierarchy."""

    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    colour: Mapped[str] = mapped_column(String(7))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("category.id", ondelete="SET NULL"), index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id")


class LabelSession(Base):
    """A curator's sitting: who labelled, from when to when."""

    __tablename__ = "session"

    id: Mapped[int] = mapped_column(primary_key=True)
    curator: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime | None]


class Vector(Base):
    """A CLIP embedding of a page, or of an annotation's region, for one model: a row of the search index.

    ``content`` identifies the pixels that were embedded (the page's sha256 and
    page index, or a hash of the region's geometry), so changed content is
    embedded again. ``data`` is the unit-length float32 vector, little-endian.
    The row id is the vector's id in the FAISS index, which is derived from this
    table and rebuilt from it whenever they disagree.
    """

    __tablename__ = "vector"
    # AUTOINCREMENT: an id is never given twice, so the index's fingerprint sees every replacement.
    __table_args__ = (Index("ix_vector_model_image", "model_id", "image_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotation.id", ondelete="CASCADE"), index=True)
    content: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ModelRun(Base):
    """One invocation of a vision model, kept for provenance and timings."""

    __tablename__ = "model_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200), index=True)
    model_version: Mapped[str] = mapped_column(String(200), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    device: Mapped[str] = mapped_column(String(50), default="")
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")


class Annotation(Base):
    """A labelled region of an image: a human's, an import's or a model's proposal."""

    __tablename__ = "annotation"
    __table_args__ = (
        CheckConstraint("bbox_w >= 0 AND bbox_h >= 0", name="bbox_non_negative"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 1)", name="score_range"),
        {"sqlite_autoincrement": True},  # ids are never reused: a parent_id can never point at a newcomer
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("category.id", ondelete="RESTRICT"), index=True
    )
    bbox_x: Mapped[float] = mapped_column(Float)
    bbox_y: Mapped[float] = mapped_column(Float)
    bbox_w: Mapped[float] = mapped_column(Float)
    bbox_h: Mapped[float] = mapped_column(Float)
    polygons: Mapped[list[Any] | None]
    rle: Mapped[dict[str, Any] | None]
    area: Mapped[float] = mapped_column(Float)
    iscrowd: Mapped[bool] = mapped_column(Boolean, default=False)
    source_kind: Mapped[SourceKind] = mapped_column(
        Enum(SourceKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    source_model: Mapped[str] = mapped_column(String(200), default="")
    source_version: Mapped[str] = mapped_column(String(200), default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float | None] = mapped_column(Float)
    status: Mapped[AnnotationStatus] = mapped_column(
        Enum(
            AnnotationStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        index=True,
    )
    creator: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("session.id", ondelete="SET NULL"), index=True
    )
    model_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_run.id", ondelete="SET NULL"), index=True
    )
    # Who accepted or rejected a proposal, and when (revision 0002).
    reviewed_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    reviewed_at: Mapped[datetime | None]
    reviewed_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("session.id", ondelete="SET NULL"), index=True
    )
    # Text hierarchy (revision 0005): paragraph ⊃ line ⊃ word. Not a foreign key: a deleted parent's
    # children stay (with no parent) until an undo puts the parent back under its id.
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reading_order: Mapped[int | None] = mapped_column(Integer)  # among the siblings (or the page's top level)
    text: Mapped[str | None] = mapped_column(Text)  # the transcription
    baseline: Mapped[list[Any] | None]  # [x0, y0, x1, y1, …] page pixels
    writing_direction: Mapped[str | None] = mapped_column(String(20))  # PAGE's names: "right-to-left"…
    # Team projects (revision 0006): raised by every change (the mapper's version counter; bulk statements
    # raise it themselves), so that an edit made on an older version is refused; who changed the row last.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200), default="", server_default="")

    __mapper_args__ = {"version_id_col": version}

    image: Mapped[Image] = relationship(back_populates="annotations")
    category: Mapped[Category] = relationship()
    session: Mapped[LabelSession | None] = relationship(foreign_keys=[session_id])
    model_run: Mapped[ModelRun | None] = relationship()


class PageLease(Base):
    """Who is reviewing a page, until when: the review queue hands a leased page to nobody else. A lease is
    renewed while its window is open and released when it closes; one left by a crash simply expires."""

    __tablename__ = "page_lease"

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    client: Mapped[str] = mapped_column(String(64))  # one window's own id: a curator's second window is another
    taken_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]


class IiifCanvas(Base):
    """The IIIF canvas a page was imported from: shapes go back to it in the canvas's own coordinates (a canvas
    is often not the size of the image delivered), and its image service can give the page again."""

    __tablename__ = "iiif_canvas"

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    manifest_id: Mapped[str] = mapped_column(Text)
    canvas_id: Mapped[str] = mapped_column(Text, index=True)
    canvas_width: Mapped[int]
    canvas_height: Mapped[int]
    service_id: Mapped[str] = mapped_column(Text, default="")  # the Image API service, "" for a plain image
    service_version: Mapped[int] = mapped_column(default=0)
