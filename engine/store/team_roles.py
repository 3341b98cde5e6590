"""Who may do what in a team project, enforced by the PostgreSQL server, not by the app.

Four group roles per project database, each including the one before:

* **viewer**: reads everything;
* **annotator**: draws, edits, transcribes and deletes annotations, imports scans and runs models;
* **reviewer**: also accepts and rejects (a trigger refuses a status change by anyone else);
* **administrator**: also the categories, the model runs' records and deleting pages.

A curator's login role is made a member of one group (:func:`grant_role`). The server refuses what a group
lacks with SQLSTATE 42501, which the app says plainly (:mod:`engine.store.postgres_store`), and the app opens a
project its curator may not write as read-only.
"""

from __future__ import annotations

import enum
import hashlib

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from engine.errors import ProjectError


class TeamRole(enum.StrEnum):
    VIEWER = "viewer"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ADMINISTRATOR = "administrator"


_ORDER = list(TeamRole)
_READ = ("project", "image", "category", "session", "vector", "model_run", "annotation", "page_lease",
         "alembic_version")
# What an annotator writes; reviewers write the same (their status changes pass the trigger).
_ANNOTATOR_WRITES = {
    "annotation": "INSERT, UPDATE, DELETE",
    "session": "INSERT, UPDATE",
    "vector": "INSERT, UPDATE, DELETE",
    "model_run": "INSERT, UPDATE",
    "page_lease": "INSERT, UPDATE, DELETE",
    "image": "INSERT, UPDATE",
}


def group_name(database: str, role: TeamRole) -> str:
    """The server's name for ``role`` in ``database`` (within PostgreSQL's 63 characters)."""
    base = "".join(char if char.isalnum() else "_" for char in database.lower())
    if len(base) > 40:
        base = base[:31] + "_" + hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"marginalia_{base}_{role.value}"


def set_up_roles(engine: Engine) -> bool:
    """Create the four groups and their grants (idempotent); ``False`` where this login may not create roles
    (the project then works, but only its owner and the server's administrators can write)."""
    with engine.begin() as connection:
        allowed = connection.exec_driver_sql(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").scalar()
        if not allowed:
            return False
        database = str(connection.exec_driver_sql("SELECT current_database()").scalar())
        names = {role: group_name(database, role) for role in TeamRole}
        for role in TeamRole:
            exists = connection.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(name)s",
                                                {"name": names[role]}).first()
            if not exists:
                connection.exec_driver_sql(f'CREATE ROLE "{names[role]}" NOLOGIN')
        for lower, higher in zip(_ORDER, _ORDER[1:], strict=False):
            connection.exec_driver_sql(f'GRANT "{names[lower]}" TO "{names[higher]}"')
        connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO "{names[TeamRole.VIEWER]}"')
        connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{names[TeamRole.VIEWER]}"')
        connection.exec_driver_sql(f'GRANT SELECT ON {", ".join(_READ)} TO "{names[TeamRole.VIEWER]}"')
        for table, privileges in _ANNOTATOR_WRITES.items():
            connection.exec_driver_sql(f'GRANT {privileges} ON {table} TO "{names[TeamRole.ANNOTATOR]}"')
        connection.exec_driver_sql(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{names[TeamRole.ANNOTATOR]}"')
        connection.exec_driver_sql(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{names[TeamRole.ADMINISTRATOR]}"')
        connection.exec_driver_sql(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{names[TeamRole.ADMINISTRATOR]}"')
        _guard_reviews(connection, names[TeamRole.REVIEWER])
    return True


def _guard_reviews(connection: Connection, reviewer_group: str) -> None:
    # SECURITY INVOKER (the default): the check is about the curator who runs the statement. The owner (who
    # made the project) and the server's superusers pass, as for every grant.
    connection.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION marginalia_guard_review() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT pg_has_role(current_user, '{reviewer_group}', 'MEMBER')
       AND NOT pg_has_role(current_user, (SELECT tableowner FROM pg_tables
                                           WHERE schemaname = 'public' AND tablename = 'annotation'), 'MEMBER')
    THEN
        RAISE EXCEPTION 'only a reviewer may accept or reject annotations' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$""")
    connection.exec_driver_sql("DROP TRIGGER IF EXISTS marginalia_guard_review ON annotation")
    # WHEN: the function runs only for a row whose status changes, not on every edit.
    connection.exec_driver_sql("CREATE TRIGGER marginalia_guard_review BEFORE UPDATE OF status ON annotation "
                               "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) "
                               "EXECUTE FUNCTION marginalia_guard_review()")


def grant_role(engine: Engine, login: str, role: TeamRole) -> None:
    """Make ``login`` (an existing login role on the server) a ``role`` of this project, and nothing more."""
    if not set_up_roles(engine):  # a restored or copied database needs its own groups
        raise ProjectError("Your login may not manage roles on this server; ask its administrator.")
    with engine.begin() as connection:
        if not connection.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(name)s",
                                          {"name": login}).first():
            raise ProjectError(f"The server has no login '{login}': its administrator makes one first "
                               "(CREATE ROLE … LOGIN).")
        database = str(connection.exec_driver_sql("SELECT current_database()").scalar())
        for other in TeamRole:
            connection.exec_driver_sql(f'REVOKE "{group_name(database, other)}" FROM "{_quoted(login)}"')
        connection.exec_driver_sql(f'GRANT "{group_name(database, role)}" TO "{_quoted(login)}"')


def role_of(engine: Engine, login: str | None = None) -> TeamRole | None:
    """The highest role ``login`` (default: this connection's) holds in the project; ``None``: none."""
    with engine.connect() as connection:
        database = str(connection.exec_driver_sql("SELECT current_database()").scalar())
        who = login or str(connection.exec_driver_sql("SELECT current_user").scalar())
        for role in reversed(_ORDER):
            held = connection.exec_driver_sql(
                "SELECT pg_has_role(%(who)s, oid, 'MEMBER') FROM pg_roles WHERE rolname = %(group)s",
                {"who": who, "group": group_name(database, role)}).scalar()
            if held:
                return role
    return None


def _quoted(name: str) -> str:
    return name.replace('"', '""')
