"""Parse the command line and run one command.

Errors reach the user as one line on standard error; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from cli import (
    about,
    attention,
    batch,
    commands,
    detect,
    iiif,
    layout,
    models,
    search,
    team,
    text,
)
from engine.errors import MarginaliaError
from engine.paths import append_to_log
from engine.version import build_info


class _ShowVersion(argparse.Action):
    """``--version``, worked out only when asked (from a checkout it asks git: not on every command)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(build_info().line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks for errors")
    parser = argparse.ArgumentParser(
        prog="marginalia",
        description="Annotate and explore heritage scans. Without a command, opens the app.",
        parents=[debug],
    )
    parser.add_argument("--version", action=_ShowVersion, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    new = sub.add_parser("new", parents=[debug], help="create a project folder")
    new.add_argument("project", metavar="PROJECT", help="folder for the new project")
    new.add_argument("--name", help="a display name (default: the folder's name)")
    new.add_argument("--db", metavar="DATABASE", help="make a team project in this empty PostgreSQL database "
                     "(postgresql://USER@HOST:PORT/DATABASE; the password goes in ~/.pgpass or PGPASSWORD)")
    new.set_defaults(handler=commands.cmd_new)

    imp = sub.add_parser("import", parents=[debug], help="import scans (files or folders)",
                         description="Import image files and folders (recursively). Bad files "
                         "are listed with their reason and skipped; the rest are imported.")
    imp.add_argument("project", metavar="PROJECT")
    imp.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    imp.add_argument("-v", "--verbose", action="store_true",
                     help="also list files that were ignored because they are not images")
    imp.set_defaults(handler=commands.cmd_import)

    lst = sub.add_parser("list", parents=[debug], help="list a project's images")
    lst.add_argument("project", metavar="PROJECT")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=commands.cmd_list)

    exp = sub.add_parser("export", parents=[debug], help="export annotations")
    exp.add_argument("project", metavar="PROJECT")
    exp.add_argument("--format", choices=["coco", "page", "alto", "w3c", "iiif"], default="coco",
                     help="coco: one JSON file; page (PAGE XML 2019) or alto (ALTO 4): one file per page into "
                          "the --out folder; w3c or iiif (the same): W3C Web Annotations on IIIF canvases, one "
                          "annotation page per page, with a IIIF Presentation 3 manifest (default: coco)")
    exp.add_argument("--out", required=True, metavar="FILE|DIR",
                     help="the file (COCO) or folder (PAGE, ALTO, W3C) to write")
    exp.add_argument("--base-url", metavar="URL",
                     help="w3c: the web address the folder will be published at, which the manifest's and "
                          "annotations' identifiers start with (default: the folder's file: address)")
    exp.add_argument("--include-proposals", action="store_true",
                     help="also export model proposals not yet reviewed, with their scores")
    exp.add_argument("--images-root", "--image-root", dest="image_root", metavar="FOLDER",
                     help="make file names relative to this folder (default: the deepest "
                          "folder holding all images)")
    exp.add_argument("--with-images", action="store_true",
                     help="also put the page images into an images/ folder beside the file (pages of "
                          "multi-page files and turned photographs as PNG), so the folder loads anywhere")
    exp.add_argument("--link-images", action="store_true",
                     help="with --with-images: hard-link the scans instead of copying them where possible "
                          "(no extra space; the link and your scan are then the same file)")
    exp.add_argument("--overwrite", action="store_true",
                     help="replace files an earlier export wrote there (never any other file: a scan, the "
                          "project, a file from another tool or one changed since it was exported)")
    exp.set_defaults(handler=commands.cmd_export)

    coco = sub.add_parser("import-coco", parents=[debug], help="add annotations from a COCO file")
    coco.add_argument("project", metavar="PROJECT")
    coco.add_argument("file", metavar="FILE")
    coco.add_argument("-v", "--verbose", action="store_true", help="list every corrected annotation")
    coco.set_defaults(handler=commands.cmd_import_coco)

    rel = sub.add_parser("relink", parents=[debug],
                         help="find moved image files by their content and update the project")
    rel.add_argument("project", metavar="PROJECT")
    rel.add_argument("folders", metavar="FOLDER", nargs="+")
    rel.set_defaults(handler=commands.cmd_relink)

    layout.add_parsers(sub, debug)
    iiif.add_parsers(sub, debug)
    models.add_parser(sub, debug)
    search.add_parsers(sub, debug)
    detect.add_parser(sub, debug)
    text.add_parser(sub, debug)
    attention.add_parsers(sub, debug)
    about.add_parser(sub, debug)
    team.add_parsers(sub, debug)
    batch.add_parser(sub, debug)

    gui = sub.add_parser("gui", parents=[debug], help="open the app (the default)")
    gui.add_argument("project", metavar="PROJECT", nargs="?",
                     help="project to open (default: the last one, or the demo on first run)")
    gui.add_argument("--screenshot", metavar="FILE.png",
                     help="render the window with the first page selected to a PNG and exit")
    gui.add_argument("--report-startup", action="store_true", help=argparse.SUPPRESS)
    gui.set_defaults(handler=commands.cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "gui"])
    debug = getattr(args, "debug", False)
    try:
        return int(args.handler(args))
    except MarginaliaError as error:
        if debug:
            traceback.print_exc()
        print(f"marginalia: error: {error}", file=sys.stderr)
        return commands.EXIT_FAILED
    except BrokenPipeError:
        # Output piped into a pager or `head` that stopped reading: not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return commands.EXIT_OK
    except KeyboardInterrupt:
        print("marginalia: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: never a bare traceback
        if debug:
            traceback.print_exc()
        else:
            log = append_to_log("FATAL " + traceback.format_exc()) if args.command == "gui" else None
            where = f"details are in the log file {log}" if log else "run again with --debug for details"
            print(f"marginalia: unexpected error: {type(error).__name__}: {error} ({where})", file=sys.stderr)
        return commands.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
