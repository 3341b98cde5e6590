"""The command handlers. Each takes the parsed arguments and returns an exit status.

What one command alone needs is imported in its handler: every command pays for the module imports
at the top, and a search from a fresh process should start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from cli.progress import progress_bar
from engine.errors import MarginaliaError
from engine.inventory import list_images, summarise
from engine.paths import DB_FILENAME, append_to_log, displayable, log_file
from engine.project import Project

_CORRECTIONS_SHOWN = 20
EXIT_OK = 0
EXIT_FAILED = 1


def open_project(folder: str) -> Project:
    """Open a project for a command; waits for other processes are announced on standard error."""
    project = Project.open(Path(folder))
    project.on_waiting = lambda message: print(f"marginalia: {message}", file=sys.stderr, flush=True)
    return project


def add_page_choice(parser: argparse.ArgumentParser) -> None:
    """``--pages IDS`` or ``--all``, one of them required (read back with ``page_ids``)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pages", metavar="IDS", help="page ids, comma-separated (see 'marginalia list')")
    which.add_argument("--all", action="store_true", help="every page of the project")


def page_ids(project: Project, args: argparse.Namespace) -> list[int]:
    """The pages ``--pages IDS`` or ``--all`` name, checked against the project."""
    pages = [row.id for row in list_images(project)]
    if args.all:
        return pages
    try:
        wanted = [int(part) for part in args.pages.split(",") if part.strip()]
    except ValueError as error:
        raise MarginaliaError(f"--pages takes page ids separated by commas, not {args.pages!r}.") from error
    unknown = sorted(set(wanted) - set(pages))
    if unknown:
        raise MarginaliaError(f"The project has no page {', '.join(map(str, unknown))} (see 'marginalia list').")
    return wanted


def export_folder(args: argparse.Namespace, images_said: str, folder_said: str) -> Path:
    """``--out`` of an export that writes a folder of its own: COCO's image options refused (``images_said``:
    why they do not apply), and a file there refused (``folder_said``: what the folder receives)."""
    if args.with_images or args.link_images or args.image_root:
        raise MarginaliaError(f"--with-images, --link-images and --images-root are for COCO; {images_said}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MarginaliaError(f"{displayable(str(out))} is a file; {folder_said}")
    return out


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return displayable(path.as_posix() if relative.startswith("..") else relative)


def cmd_new(args: argparse.Namespace) -> int:
    from engine.store.team import parse_address

    database = parse_address(args.db) if args.db else None
    with Project.create(Path(args.project), name=args.name, empty_folder_only=True,
                        team_database=database) as project:
        where = f" (a team project in {args.db})" if database is not None else ""
        print(f"Created project '{project.name}' in {project.folder}{where}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    with open_project(args.project) as project, progress_bar("Importing") as bar:
        from engine.ingest.report import Outcome
        from engine.ingest.scan_import import import_scans

        result = import_scans(project, [Path(p) for p in args.paths], progress=bar)
    for item in result.results:
        if item.outcome is Outcome.IGNORED and not args.verbose:
            continue
        if item.outcome is Outcome.IMPORTED:
            print(f"imported   {_display(item.path)}  {displayable(item.details())}")
        else:
            print(f"{item.outcome.value:<10} {_display(item.path)}: {displayable(item.reason)}")
    print(result.summary())
    named_paths_failed = all(
        item.outcome is Outcome.FAILED and item.reason == "not found" for item in result.results
    )
    if result.results and named_paths_failed:
        print("marginalia: error: none of the given paths exists", file=sys.stderr)
        return EXIT_FAILED
    if result.of(Outcome.FAILED) and not result.of(Outcome.IMPORTED) and not result.of(Outcome.DUPLICATE):
        print("marginalia: error: nothing could be imported (the reasons are listed above)", file=sys.stderr)
        return EXIT_FAILED
    if not result.results:
        print("marginalia: nothing to import: the given folders hold no files", file=sys.stderr)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with open_project(args.project) as project:
        rows = list_images(project)
        summary = summarise(project)
    if args.json:
        json.dump({"project": asdict(summary),
                   "images": [{**row.as_dict(), "path": displayable(row.path)} for row in rows]},
                  sys.stdout, ensure_ascii=False, indent=1)
        print()
        return EXIT_OK
    print(f"{summary.name}: {summary.images} image(s), {summary.categories} categor"
          f"{'y' if summary.categories == 1 else 'ies'}, {summary.accepted} accepted, "
          f"{summary.proposed} proposed annotation(s)")
    if summary.missing_images or summary.changed_images:
        print(f"{summary.missing_images} page(s) with missing files (relink them), {summary.changed_images} "
              "with files changed since import (their annotations may no longer fit)")
    if rows:
        print(f"{'id':>5}  {'size':>11}  {'format':<8} {'page':>5}  {'acc':>4} {'prop':>4}  path")
    for row in rows:
        page = f"{row.page_number}/{row.page_count}" if row.page_count > 1 else ""
        missing = "  [missing]" if row.missing else "  [file changed since import]" if row.changed else ""
        print(f"{row.id:>5}  {f'{row.width}×{row.height}':>11}  {row.format:<8} {page:>5}  "
              f"{row.accepted:>4} {row.proposed:>4}  {displayable(row.path)}{missing}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    if args.format in ("w3c", "iiif"):
        from cli.iiif import export_w3c  # noqa: PLC0415 - its own module

        return export_w3c(args)
    if args.base_url:
        raise MarginaliaError("--base-url is for the W3C (IIIF) export, whose identifiers are web addresses.")
    if args.format != "coco":
        from cli.layout import export_layout  # noqa: PLC0415 - one file per page, another module

        return export_layout(args)
    with open_project(args.project) as project:
        from engine.coco.exporter import export_coco

        done = export_coco(project, Path(args.out), include_proposals=args.include_proposals,
                           image_root=Path(args.image_root) if args.image_root else None,
                           with_images=args.with_images, link_images=args.link_images,
                           overwrite=args.overwrite)
    print(f"Wrote {done.annotations} annotation(s) on {done.images} image(s) in "
          f"{done.categories} categor{'y' if done.categories == 1 else 'ies'} to {displayable(done.path)}; "
          f"file names are relative to {displayable(done.images_root)}")
    return EXIT_OK


def cmd_import_coco(args: argparse.Namespace) -> int:
    with open_project(args.project) as project:
        from engine.coco.importer import import_coco

        result = import_coco(project, Path(args.file))
    for problem in result.problems:
        print(f"skipped: {displayable(problem)}")
    shown = result.corrections if args.verbose else result.corrections[:_CORRECTIONS_SHOWN]
    for correction in shown:
        print(f"corrected: {displayable(correction)}")
    if len(shown) < len(result.corrections):
        print(f"corrected: … and {len(result.corrections) - len(shown)} more (--verbose lists them all)")
    if result.categories_created:
        print("new categories: " + ", ".join(result.categories_created))
    print(result.summary())
    return EXIT_OK


def cmd_relink(args: argparse.Namespace) -> int:
    with open_project(args.project) as project, progress_bar("Searching") as bar:
        from engine.relink import relink

        result = relink(project, [Path(folder) for folder in args.folders], progress=bar)
    for old, new in result.relinked:
        print(f"relinked  {displayable(old)} -> {displayable(new)}")
    for path in result.still_missing:
        print(f"missing   {displayable(path)}")
    print(result.summary())
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    from gui.platform_check import platform_problem  # noqa: PLC0415 - imports no Qt

    problem = None if args.screenshot or args.report_startup else platform_problem(log_file())
    if problem is not None:
        append_to_log(f"FATAL {problem}")  # the message on screen is what counts if this cannot be written
        print(problem, file=sys.stderr)
        return EXIT_FAILED
    from gui.app import run_app  # noqa: PLC0415 - Qt loads only when the window is wanted

    project = Path(args.project) if args.project else None
    if project is not None and project.name == DB_FILENAME and project.is_file():
        project = project.parent  # a project's database, double-clicked in a file manager
    if project is not None:
        Project.open(project).close()  # a missing or broken project fails here, on one line
    screenshot = Path(args.screenshot) if args.screenshot else None
    return run_app(project, screenshot=screenshot, report_visible=args.report_startup)
