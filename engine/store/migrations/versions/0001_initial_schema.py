"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 14:37:49.018262
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('colour', sa.String(length=7), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['category.id'], name=op.f('fk_category_parent_id_category'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_category')),
    sa.UniqueConstraint('name', name=op.f('uq_category_name'))
    )
    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_category_parent_id'), ['parent_id'], unique=False)

    op.create_table('image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('page_index', sa.Integer(), nullable=False),
    sa.Column('page_count', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('orientation', sa.Integer(), nullable=False),
    sa.Column('file_size', sa.Integer(), nullable=False),
    sa.Column('file_mtime', sa.Double(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('shelfmark', sa.Text(), nullable=False),
    sa.Column('date', sa.String(length=100), nullable=False),
    sa.Column('rights', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('added_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('page_index >= 0', name=op.f('ck_image_page_index_non_negative')),
    sa.CheckConstraint('width > 0 AND height > 0', name=op.f('ck_image_positive_size')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image')),
    sa.UniqueConstraint('sha256', 'page_index', name='file_page')
    )
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_path'), ['path'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_sha256'), ['sha256'], unique=False)

    op.create_table('model_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.Column('model_version', sa.String(length=200), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('device', sa.String(length=50), nullable=False),
    sa.Column('timings', sa.JSON(), nullable=False),
    sa.Column('started_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('finished_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_run'))
    )
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_run_model_id'), ['model_id'], unique=False)

    op.create_table('project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    op.create_table('session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('curator', sa.String(length=200), nullable=False),
    sa.Column('started_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('ended_at', engine.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session'))
    )
    op.create_table('annotation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('bbox_x', sa.Float(), nullable=False),
    sa.Column('bbox_y', sa.Float(), nullable=False),
    sa.Column('bbox_w', sa.Float(), nullable=False),
    sa.Column('bbox_h', sa.Float(), nullable=False),
    sa.Column('polygons', sa.JSON(), nullable=True),
    sa.Column('rle', sa.JSON(), nullable=True),
    sa.Column('area', sa.Float(), nullable=False),
    sa.Column('iscrowd', sa.Boolean(), nullable=False),
    sa.Column('source_kind', sa.Enum('human', 'model', 'import', name='sourcekind', native_enum=False, length=16), nullable=False),
    sa.Column('source_model', sa.String(length=200), nullable=False),
    sa.Column('source_version', sa.String(length=200), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('status', sa.Enum('proposed', 'accepted', 'rejected', name='annotationstatus', native_enum=False, length=16), nullable=False),
    sa.Column('creator', sa.String(length=200), nullable=False),
    sa.Column('created_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('model_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('bbox_w >= 0 AND bbox_h >= 0', name=op.f('ck_annotation_bbox_non_negative')),
    sa.CheckConstraint('score IS NULL OR (score >= 0 AND score <= 1)', name=op.f('ck_annotation_score_range')),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_annotation_category_id_category'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_annotation_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], name=op.f('fk_annotation_model_run_id_model_run'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['session.id'], name=op.f('fk_annotation_session_id_session'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation'))
    )
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_image_id'), ['image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_model_run_id'), ['model_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_status'))
        batch_op.drop_index(batch_op.f('ix_annotation_session_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_model_run_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_image_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_category_id'))

    op.drop_table('annotation')
    op.drop_table('session')
    op.drop_table('project')
    with op.batch_alter_table('model_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_run_model_id'))

    op.drop_table('model_run')
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_sha256'))
        batch_op.drop_index(batch_op.f('ix_image_path'))

    op.drop_table('image')
    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_category_parent_id'))

    op.drop_table('category')
