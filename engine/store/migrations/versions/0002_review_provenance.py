"""review provenance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:48:55.468890
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reviewed_at', engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_session_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_annotation_reviewed_session_id'), ['reviewed_session_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_annotation_reviewed_session_id_session'), 'session', ['reviewed_session_id'], ['id'], ondelete='SET NULL')

def downgrade() -> None:
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_annotation_reviewed_session_id_session'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_annotation_reviewed_session_id'))
        batch_op.drop_column('reviewed_session_id')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')

