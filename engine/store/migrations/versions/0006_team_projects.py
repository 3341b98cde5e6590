"""team projects: row versions, page leases, change notifications

Every annotation row carries a ``version``, raised by each change (SQLAlchemy's version counter): an edit made
on a version that is no longer the row's is refused, not applied over another curator's work. ``updated_by``
names who changed it last, for the refusal's message. A ``page_lease`` says who is reviewing a page, until when.

On PostgreSQL, statement-level triggers tell listening clients which pages' annotations changed
(``NOTIFY marginalia_changes``), one notice per page per statement, so that open windows show other curators'
work within a second. SQLite projects have a single computer and need none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "marginalia_changes"
_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _tell(kind: str, table: str) -> str:
    # A payload is JSON: {"table": ..., "image": page id or null, "ids": the annotations changed on that page, or
    # null where there are more than 200 (the reader then reads the page again)}: far below NOTIFY's 8000 bytes.
    page = {"annotation": "image_id", "image": "id"}.get(table, "NULL::integer")
    ids = "CASE WHEN count(*) <= 200 THEN json_agg(id ORDER BY id) END" if table == "annotation" else "NULL::json"
    name = f"marginalia_tell_{table}_{kind.lower()}"
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', json_build_object('table', '{table}', 'image', page, 'ids', ids)::text)
    FROM (SELECT {page} AS page, {ids} AS ids FROM changed_rows GROUP BY 1) AS pages;
    RETURN NULL;
END $$;
CREATE TRIGGER {name} AFTER {kind} ON {table}
    REFERENCING {'OLD' if kind == 'DELETE' else 'NEW'} TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""


def upgrade() -> None:
    with op.batch_alter_table('annotation', schema=None) as batch:
        batch.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('updated_by', sa.String(length=200), server_default='', nullable=False))
    op.create_table('page_lease',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('taken_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', engine.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_page_lease_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', name=op.f('pk_page_lease'))
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("annotation", "category", "image"):
            for kind in _EVENTS:
                op.execute(_tell(kind, table))
        # Outlines are read a page at a time, thousands at once: lz4 unpacks them several times faster than the
        # default pglz (where the server was built without lz4, the default stays).
        has_lz4 = op.get_bind().exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").scalar()
        if has_lz4:
            op.execute("ALTER TABLE annotation ALTER COLUMN polygons SET COMPRESSION lz4, "
                       "ALTER COLUMN rle SET COMPRESSION lz4, ALTER COLUMN baseline SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("annotation", "category", "image"):
            for kind in _EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS marginalia_tell_{table}_{kind.lower()} ON {table}")
                op.execute(f"DROP FUNCTION IF EXISTS marginalia_tell_{table}_{kind.lower()}()")
    op.drop_table('page_lease')
    with op.batch_alter_table('annotation', schema=None) as batch:
        batch.drop_column('updated_by')
        batch.drop_column('version')
