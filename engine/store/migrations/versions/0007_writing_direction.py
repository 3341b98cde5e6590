"""writing direction of a region, line or word

PAGE XML's ``readingDirection`` and ALTO's ``BASEDIRECTION``: a right-to-left line imported from either keeps
its direction and is written with it again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain added column: SQLite keeps the table (and its AUTOINCREMENT) as it is.
    op.add_column('annotation', sa.Column('writing_direction', sa.String(length=20), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"  # a rebuilt table must keep AUTOINCREMENT (see 0005)
    with op.batch_alter_table('annotation', recreate="always" if sqlite else "auto",
                              table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.drop_column('writing_direction')
