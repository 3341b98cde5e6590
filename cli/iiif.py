"""``marginalia import-iiif PROJECT URL|FILE``: a IIIF manifest's canvases as pages."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.commands import EXIT_FAILED, EXIT_OK, export_folder, open_project
from engine.errors import MarginaliaError
from engine.iiif.ranges import canvas_positions


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

    w3c = sub.add_parser(
        "import-w3c", parents=[debug], help="add W3C Web Annotations (Mirador, Annotorious, Recogito) to pages",
        description="Add the shapes of W3C Web Annotation files (an annotation page, a list of annotations, a IIIF "
                    "Presentation 2 annotation list) to the pages whose canvas they target: pages imported from "
                    "IIIF, or pages of a manifest Marginalia exported. Tags become categories, transcriptions "
                    "the shapes' text; what cannot be placed is refused with its reason.")
    w3c.add_argument("project", metavar="PROJECT")
    w3c.add_argument("files", metavar="FILE", nargs="+")
    w3c.add_argument("--page", type=int, metavar="ID",
                     help="put every annotation on this page (in its canvas's coordinates), whatever it targets")
    w3c.add_argument("--category", default="annotation", metavar="NAME",
                     help="the category of annotations without a tag (default: annotation)")
    w3c.set_defaults(handler=cmd_import_w3c)


def cmd_import_w3c(args: argparse.Namespace) -> int:
    from engine.paths import displayable  # noqa: PLC0415
    from engine.webannotation.importer import import_web_annotations  # noqa: PLC0415

    with open_project(args.project) as project:
        report = import_web_annotations(project, [Path(name) for name in args.files], page_id=args.page,
                                        default_category=args.category, creator="marginalia import-w3c")
    for reason in report.refused:
        print(f"refused    {displayable(reason)}")
    if report.refused_count > len(report.refused):
        print(f"refused    … and {report.refused_count - len(report.refused)} more")
    for note in report.corrected:
        print(f"corrected  {displayable(note)}")
    if report.categories_created:
        print("new categories: " + ", ".join(report.categories_created))
    print(report.summary())
    return EXIT_FAILED if report.refused_count and not report.added and not report.already else EXIT_OK


def export_w3c(args: argparse.Namespace) -> int:
    """``export --format w3c|iiif --out DIR [--base-url URL]``."""
    from engine.webannotation.export import export_web_annotations  # noqa: PLC0415

    out = export_folder(args, "the W3C export puts the images a web viewer needs beside its manifest itself.",
                        "the W3C export goes to a folder (a manifest, annotation pages and images).")
    with open_project(args.project) as project:
        done = export_web_annotations(project, out, base_url=args.base_url, include_proposals=args.include_proposals,
                                      overwrite=args.overwrite)
    print(done.summary())
    return EXIT_OK


def cmd_import_iiif(args: argparse.Namespace) -> int:
    from cli.progress import progress_bar  # noqa: PLC0415
    from engine.iiif.importer import import_manifest  # noqa: PLC0415

    if args.size != "max" and not (args.size.isdigit() and int(args.size) > 0):
        raise MarginaliaError(f"--size takes max or a number of pixels, not {args.size!r}.")
    size = None if args.size == "max" else int(args.size)
    with open_project(args.project) as project, progress_bar("Importing from IIIF") as progress:
        report = import_manifest(project, args.source, size=size, canvases=canvas_positions(args.canvases or ""),
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
