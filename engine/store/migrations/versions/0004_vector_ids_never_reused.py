"""vector ids are never reused

The search index is rebuilt when the vector table's (count, id sum, largest
id) changes. Without AUTOINCREMENT, SQLite gives a new row the id of a
just-deleted last row, so replacing the newest vector left all three
unchanged and the saved index stale.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate() -> str:
    # AUTOINCREMENT is SQLite's, and only a rebuilt table gets it; PostgreSQL's sequences never reuse an id.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table('vector', recreate=_recreate(), table_kwargs={'sqlite_autoincrement': True}):
        pass


def downgrade() -> None:
    with op.batch_alter_table('vector', recreate=_recreate(), table_kwargs={'sqlite_autoincrement': False}):
        pass
