"""``marginalia import-page`` / ``import-alto``, and ``export --format page|alto``: PAGE XML and ALTO."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.commands import EXIT_FAILED, EXIT_OK, export_folder, open_project
from engine.paths import displayable


def add_parsers(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    for fmt, name in (("page", "PAGE XML"), ("alto", "ALTO")):
        command = sub.add_parser(f"import-{fmt}", parents=[debug],
                                 help=f"add regions, lines and words (with their text) from {name} files",
                                 description=f"Put {name} files on the pages they describe, as accepted "
                                             "annotations with their hierarchy and transcriptions. A file goes "
                                             "on the page its scan is named like; the page's size must be the "
                                             "file's. Files that cannot be placed for certain are refused.")
        command.add_argument("project", metavar="PROJECT")
        command.add_argument("files", metavar="FILE", nargs="+", type=Path)
        command.add_argument("--image", type=int, metavar="ID",
                             help="the page to put the (single) file on (see 'marginalia list')")
        command.add_argument("--replace", action="store_true",
                             help=f"replace what an earlier {name} import put on the page")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=cmd_import_layout, layout_format=fmt)


def cmd_import_layout(args: argparse.Namespace) -> int:
    from engine.layout.files import import_layout_files  # noqa: PLC0415 - lxml loads for these commands only

    with open_project(args.project) as project:
        report = import_layout_files(project, args.files, args.layout_format, image_id=args.image,
                                     replace=args.replace)
    if args.json:
        print(json.dumps({
            "imported": [{"file": str(path), "image_id": done.image_id, "regions": done.regions, "lines": done.lines,
                          "words": done.words, "replaced": done.replaced, "notes": notes}
                         for path, done, notes in report.imported],
            "refused": [{"file": str(path), "reason": reason} for path, reason in report.refused]},
            ensure_ascii=False, indent=2))
    else:
        for path, done, notes in report.imported:
            print(f"imported  {displayable(path.name)} → page {done.image_id}: {done.regions} region(s), "
                  f"{done.lines} line(s), {done.words} word(s)" + "".join(f"; {note}" for note in notes))
        for path, reason in report.refused:
            print(f"refused   {displayable(path.name)}: {reason}")
        print(report.summary())
    return EXIT_OK if report.imported or not report.refused else EXIT_FAILED


def export_layout(args: argparse.Namespace) -> int:
    """``export --format page|alto --out DIR``."""
    from engine.layout.files import FORMATS, export_layouts  # noqa: PLC0415

    out = export_folder(args, "PAGE and ALTO files name their scans by the path from the folder they are written to.",
                        f"{FORMATS[args.format].name} goes to a folder, one file per page.")
    with open_project(args.project) as project:
        done = export_layouts(project, out, args.format, include_proposals=args.include_proposals,
                              overwrite=args.overwrite)
    for note in done.notes:
        print(f"note: {displayable(note)}")
    for page in done.left_out:
        print(f"not written: {page}")
    print(f"{FORMATS[args.format].name}: {done.summary()}")
    return EXIT_FAILED if done.left_out else EXIT_OK
