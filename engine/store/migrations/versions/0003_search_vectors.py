"""search vectors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vector',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('annotation_id', sa.Integer(), nullable=True),
    sa.Column('content', sa.String(length=100), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotation_id'], ['annotation.id'], name=op.f('fk_vector_annotation_id_annotation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_vector_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vector'))
    )
    with op.batch_alter_table('vector', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vector_annotation_id'), ['annotation_id'], unique=False)
        batch_op.create_index('ix_vector_model_image', ['model_id', 'image_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vector', schema=None) as batch_op:
        batch_op.drop_index('ix_vector_model_image')
        batch_op.drop_index(batch_op.f('ix_vector_annotation_id'))

    op.drop_table('vector')
