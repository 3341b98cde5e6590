"""Team projects from the command line: joining one, sharing a project with a team, archiving one, and roles.

``marginalia new PROJECT --db postgresql://…`` (in :mod:`cli.app`) makes a new one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.commands import EXIT_OK, open_project
from cli.progress import progress_bar
from engine.errors import MarginaliaError


def add_parsers(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    address_help = ("the team's PostgreSQL database, postgresql://USER@HOST:PORT/DATABASE (add ?sslmode=require "
                    "for TLS); never a password: put it in ~/.pgpass or PGPASSWORD")
    join = sub.add_parser("join", parents=[debug], help="a folder on this computer for an existing team project",
                          description="Make PROJECT this computer's folder for the team project in DATABASE "
                                      "(its caches stay local). Scans are found through this computer's own "
                                      "paths: see 'marginalia relink' where they are mounted elsewhere.")
    join.add_argument("project", metavar="PROJECT", help="a new or empty folder")
    join.add_argument("database", metavar="DATABASE", help=address_help)
    join.set_defaults(handler=cmd_join)

    share = sub.add_parser("share", parents=[debug], help="copy a project into an empty team database",
                           description="Copy the single-file project PROJECT into the empty PostgreSQL DATABASE, "
                                       "check the copy value by value, and make FOLDER (default: PROJECT-team "
                                       "beside it) its folder here. PROJECT is only read.")
    share.add_argument("project", metavar="PROJECT")
    share.add_argument("database", metavar="DATABASE", help=address_help)
    share.add_argument("--folder", help="the team project's folder on this computer (new or empty)")
    share.set_defaults(handler=cmd_share)

    archive = sub.add_parser("export-project", parents=[debug], help="copy a project into one file, for archiving",
                             description="Copy PROJECT (a team project, typically) into a new single-file project "
                                         "in FOLDER, checked value by value.")
    archive.add_argument("project", metavar="PROJECT")
    archive.add_argument("folder", metavar="FOLDER", help="a new or empty folder")
    archive.set_defaults(handler=cmd_export_project)

    roots = sub.add_parser("roots", parents=[debug], help="where this computer finds the project's scans",
                           description="List, add or remove this computer's collection roots: a folder the "
                                       "project's pages were imported from (STORED), and where that folder is "
                                       "here (HERE), such as the shared drive's mount point. Kept in the project "
                                       "folder on this computer; the database is not changed.")
    roots.add_argument("project", metavar="PROJECT")
    roots.add_argument("--add", nargs=2, metavar=("STORED", "HERE"))
    roots.add_argument("--remove", metavar="STORED")
    roots.set_defaults(handler=cmd_roots)

    role = sub.add_parser("team-role", parents=[debug], help="give a server login a role in a team project",
                          description="Roles, enforced by the server: viewer (reads), annotator (draws, edits, "
                                      "imports, runs models), reviewer (also accepts and rejects), administrator "
                                      "(also categories and deleting pages).")
    role.add_argument("project", metavar="PROJECT")
    role.add_argument("login", metavar="LOGIN", help="an existing login role on the server")
    role.add_argument("role", choices=["viewer", "annotator", "reviewer", "administrator"])
    role.set_defaults(handler=cmd_team_role)


def cmd_join(args: argparse.Namespace) -> int:
    from engine.project import Project
    from engine.store.team import parse_address

    with Project.join(Path(args.project), parse_address(args.database)) as project:
        mode = " (read-only: your role is a viewer's)" if project.read_only else ""
        print(f"Joined team project '{project.name}' in {project.folder}{mode}")
    return EXIT_OK


def cmd_share(args: argparse.Namespace) -> int:
    from engine.store.team import parse_address
    from engine.team_projects import share_project

    source = Path(args.project).expanduser().resolve()
    folder = Path(args.folder) if args.folder else source.with_name(source.name + "-team")
    with progress_bar("Copying") as bar:
        counts = share_project(source, parse_address(args.database), folder, progress=bar)
    print(f"Shared: {counts['image']} page(s), {counts['annotation']} annotation(s), {counts['category']} "
          f"categories copied and checked. The team project's folder here is {folder}; {source} is unchanged.")
    return EXIT_OK


def cmd_export_project(args: argparse.Namespace) -> int:
    from engine.team_projects import export_single_file

    with open_project(args.project) as project, progress_bar("Copying") as bar:
        counts = export_single_file(project, Path(args.folder), progress=bar)
    print(f"Exported: {counts['image']} page(s), {counts['annotation']} annotation(s) copied and checked into "
          f"{Path(args.folder).expanduser().resolve()}.")
    return EXIT_OK


def cmd_roots(args: argparse.Namespace) -> int:
    from engine.inventory import list_images

    with open_project(args.project) as project:
        roots = project.roots
        if args.add:
            stored, here = args.add
            if not Path(here).is_dir():
                raise MarginaliaError(f"{here} is not a folder on this computer; nothing was changed.")
            roots.add_root(stored, str(Path(here).expanduser().resolve()))
        if args.remove and not roots.remove_root(args.remove):
            raise MarginaliaError(f"No collection root is stored as {args.remove}; nothing was changed.")
        if args.add or args.remove:
            roots.save(project.folder)
        rows = list_images(project)  # the project's sessions find the pages through these very roots
        for stored, here in project.roots.roots:
            print(f"{stored}  →  {here}")
        if project.roots.files:
            print(f"{len(project.roots.files)} file(s) found elsewhere by their content (relink)")
        missing = sum(1 for row in rows if row.missing)
        print(f"{len(rows) - missing} of {len(rows)} page(s) found on this computer" +
              (f"; {missing} missing: add a root, or relink" if missing else ""))
    return EXIT_OK


def cmd_team_role(args: argparse.Namespace) -> int:
    from engine.store.team_roles import TeamRole, grant_role

    with open_project(args.project) as project:
        if not project.is_team:
            raise MarginaliaError(f"{project.folder} is a single-file project: roles belong to team projects.")
        grant_role(project.store.engine, args.login, TeamRole(args.role))
    print(f"{args.login} is now a {args.role} of the project.")
    return EXIT_OK
