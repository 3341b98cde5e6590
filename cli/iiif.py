"""``marginalia import-iiif PROJECT URL|FILE``: a IIIF manifest's canvases as pages."""

from __future__ import annotations

import argparse
import json
import sys

from cli.commands import EXIT_FAILED, EXIT_OK, open_project
from engine.errors import MarginaliaError


def add_parsers(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    command = sub.add_parser(
        "import-iiif", parents=[debug], help="import a digitised book from its IIIF manifest",
        description="Fetch a IIIF Presentation 2.1 or 3 manifest (a web address or a saved file) and import each "
                    "canvas as a page, with its label and the manifest's metadata, at full resolution from its "
                    "Image API service (stitched from tiles where the server caps sizes). Images go into the "
                    "project's iiif folder; importing again fetches only what is missing. A collection is "
                    "listed: import one of its manifests.")
    command.add_argument("project", metavar="PROJECT")
    command.add_argument("source", metavar="URL|FILE", help="the manifest's address, or a saved manifest.json")
    command.add_argument("--size", default="max", metavar="max|PIXELS",
                         help="full resolution (max, the default) or the longer side in pixels")
    command.add_argument("--canvases", metavar="RANGE", help="canvases to import, counted from 1: 1-20,25")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=cmd_import_iiif)


def canvas_positions(text: str | None) -> range | list[int] | None:
    """``"1-20,25"`` → the 0-based positions 0…19 and 24."""
    if not text:
        return None
    positions: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            start, end = int(first), int(last or first)
            if start < 1 or end < start:
                raise ValueError(part)
            positions += range(start - 1, end)
    except ValueError:
        raise MarginaliaError(f"--canvases takes numbers and ranges from 1, like 1-20,25; not {text!r}.") from None
    return positions


def cmd_import_iiif(args: argparse.Namespace) -> int:
    from cli.progress import progress_bar  # noqa: PLC0415
    from engine.iiif.importer import import_manifest  # noqa: PLC0415

    if args.size != "max" and not (args.size.isdigit() and int(args.size) > 0):
        raise MarginaliaError(f"--size takes max or a number of pixels, not {args.size!r}.")
    size = None if args.size == "max" else int(args.size)
    with open_project(args.project) as project, progress_bar("Importing from IIIF") as progress:
        report = import_manifest(project, args.source, size=size, canvases=canvas_positions(args.canvases),
                                 progress=progress)
    if args.json:
        json.dump({"manifest": report.manifest, "added": report.pages_added, "already": report.pages_already,
                   "requests": report.requests, "image_ids": report.image_ids,
                   "failed": [{"canvas": label, "reason": reason} for label, reason in report.failed],
                   "left_out": report.left_out, "cancelled": report.cancelled}, sys.stdout, indent=1,
                  ensure_ascii=False)
        print()
    else:
        for label, reason in report.failed:
            print(f"failed     {label}: {reason}")
        for reason in report.left_out:
            print(f"left out   {reason}")
        print(report.summary())
    return EXIT_FAILED if report.failed and not report.pages_added and not report.pages_already else EXIT_OK
