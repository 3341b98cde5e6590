"""IIIF canvases of imported pages

A page imported from a IIIF manifest remembers its canvas (id, size) and its image service, so that shapes
are given back in the canvas's coordinates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('iiif_canvas',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('manifest_id', sa.Text(), nullable=False),
    sa.Column('canvas_id', sa.Text(), nullable=False),
    sa.Column('canvas_width', sa.Integer(), nullable=False),
    sa.Column('canvas_height', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Text(), nullable=False),
    sa.Column('service_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_iiif_canvas_image_id_image'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', name=op.f('pk_iiif_canvas'))
    )
    op.create_index(op.f('ix_iiif_canvas_canvas_id'), 'iiif_canvas', ['canvas_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_iiif_canvas_canvas_id'), table_name='iiif_canvas')
    op.drop_table('iiif_canvas')
