"""Making a curator's project a team's, and a team's project an archive file.

* :func:`share_project` copies a single-file project into an empty PostgreSQL database and gives it a new folder
  (the team project's on this computer); the original folder and its ``project.sqlite`` are only read.
* :func:`export_single_file` copies a project (a team's, typically) into a new single-file project.

Both check the copy value by value (:mod:`engine.store.transfer`) before reporting success; a copy that fails
leaves no half project behind: what was written is removed, and nothing else is touched.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from engine.errors import ProjectError
from engine.jobs import CancelToken, ProgressCallback
from engine.paths import PROJECT_MARKERS
from engine.project import Project
from engine.store.transfer import copied_tables, copy_rows, table_counts, verify_copy


def share_project(source: Path, database: URL, folder: Path, *, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> dict[str, int]:
    """Copy the project in ``source`` into the empty team ``database``; ``folder`` becomes its folder here.
    Returns the rows copied per table."""
    folder = Path(folder).expanduser().resolve()
    if folder == Path(source).expanduser().resolve():
        raise ProjectError("The team project needs a folder of its own: the original's stays as it is.")
    with Project.open(source, read_only=True) as original:
        if original.is_team:
            raise ProjectError(f"{source} is a team project already.")
        team = Project.create(folder, team_database=database, empty_folder_only=True)
        return _copy_checked(original, team, folder, progress, cancel)


def export_single_file(project: Project, folder: Path, *, progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> dict[str, int]:
    """Copy ``project`` into a new single-file project in ``folder`` (new or empty), for archiving or handing on."""
    folder = Path(folder).expanduser().resolve()
    archive = Project.create(folder, name=project.name, empty_folder_only=True)
    return _copy_checked(project, archive, folder, progress, cancel)


def _copy_checked(source: Project, target: Project, folder: Path, progress: ProgressCallback | None,
                  cancel: CancelToken | None) -> dict[str, int]:
    """Copy ``source``'s rows into the new project ``target`` (in ``folder``) and check them; the rows per table.
    A failure leaves ``target``'s database empty and ``folder`` as it was before ``target`` was made there."""
    try:
        copied = copy_rows(source.store.engine, target.store.engine, progress=progress, cancel=cancel)
        verify_copy(copied, target.store.engine)
        return table_counts(target.store.engine)
    except BaseException:
        if target.is_team:
            _empty_team_database(target)  # the file of a single-file target goes with its folder
        target.close()
        _remove_new_folder(folder)
        raise
    finally:
        target.close()


def _empty_team_database(team: Project) -> None:
    """Leave the team database as empty as it was found (its schema stays: a new try needs it anyway)."""
    with contextlib.suppress(Exception), team.store.engine.begin() as connection:
        names = ", ".join(table.name for table in copied_tables())
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _remove_new_folder(folder: Path) -> None:
    """Remove what a failed copy made in ``folder`` (a new or empty folder): its project files and caches."""
    for name in (*PROJECT_MARKERS, "project.sqlite-wal", "project.sqlite-shm", "cache"):
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only if nothing else is in it
