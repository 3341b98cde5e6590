"""text hierarchy: parent links, reading order, transcriptions, baselines

Words belong to lines and lines to paragraphs (``parent_id``), in a reading
order among their siblings; a line or word may carry its transcription and a
line its baseline. ``parent_id`` is a plain indexed column, not a foreign key:
deleting a line leaves its words in place, and undoing the deletion puts the
line back under its old id, so the words are its own again. That is only safe
because annotation ids are never reused (AUTOINCREMENT, as for vectors in 0004):
a new annotation can never take the id of a deleted parent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate() -> str:
    # AUTOINCREMENT is SQLite's, and only a rebuilt table gets it; PostgreSQL's sequences never reuse an id.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table('annotation', recreate=_recreate(), table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reading_order', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('text', sa.Text(), nullable=True))
        batch.add_column(sa.Column('baseline', sa.JSON(), nullable=True))
        batch.create_index(batch.f('ix_annotation_parent_id'), ['parent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('annotation', recreate=_recreate(),
                              table_kwargs={'sqlite_autoincrement': False}) as batch:
        batch.drop_index(batch.f('ix_annotation_parent_id'))
        batch.drop_column('baseline')
        batch.drop_column('text')
        batch.drop_column('reading_order')
        batch.drop_column('parent_id')
