"""Alembic environment: runs on the connection the engine hands over.

For developers, ``alembic -x db=PATH revision --autogenerate -m "..."`` (from
the repository root, with ``alembic.ini``) works against a scratch database.
"""

from alembic import context
from sqlalchemy import create_engine

from engine.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    db_path = context.get_x_argument(as_dictionary=True).get("db", "scratch.sqlite")
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as own_connection:
        context.configure(
            connection=own_connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
