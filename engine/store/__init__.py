"""Persistence: SQLAlchemy models, the SQLite connection and Alembic migrations."""
