"""``marginalia text``: find text with Hi-SAM (strokes, paragraphs, lines, words) on a project's pages."""

from __future__ import annotations

import argparse
import json
import sys

from cli.commands import add_page_choice, open_project, page_ids
from cli.progress import progress_bar
from engine.errors import MarginaliaError

DEFAULT_MODEL = "hi-sam-vit-b"
ALL_LEVELS = "strokes,paragraphs,lines,words"


def add_parser(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    text = sub.add_parser("text", parents=[debug], help="find text: strokes, words, lines and paragraphs (Hi-SAM)",
                          description="Find the text of pages with Hi-SAM as proposals: one stroke mask per page, "
                                      "and paragraphs holding lines holding words, in reading order. Pages already "
                                      "done with the same model are skipped, so a stopped run can simply be "
                                      "run again.")
    text.add_argument("project")
    add_page_choice(text)
    add_text_options(text)
    text.add_argument("--json", action="store_true", help="machine-readable output")
    text.set_defaults(handler=cmd_text)


def add_text_options(text: argparse.ArgumentParser) -> None:
    """The options ``text`` and ``batch … text`` share (read back with :func:`text_options`)."""
    text.add_argument("--levels", default=ALL_LEVELS, help=f"what to find, comma-separated ({ALL_LEVELS})")
    text.add_argument("--model", default=DEFAULT_MODEL, help=f"a Hi-SAM model id (default {DEFAULT_MODEL})")
    text.add_argument("--window", default="1024", metavar="PIXELS|page",
                      help="read large pages in windows of this many pixels, at their own scale (default 1024, "
                           "the model's input); 'page': the whole page at once, shrunk (faster, loses small print)")
    text.add_argument("--points", type=int,
                      help="the authors' exhaustive sampling: this many random stroke pixels per window, every one "
                           "decoded (1500 in their paper; for comparison). Default: prompts placed by the strokes' "
                           "structure and decoded in rounds, none inside a line already found (far fewer)")
    text.add_argument("--max-prompts", type=int, default=256,
                      help="points decoded at most per window, beyond one per mark of ink (256): a page whose "
                           "window reached it with ink left to prompt is named in the summary, as lines may be "
                           "missing there")
    text.add_argument("--line-score", type=float, default=0.5, help="keep lines whose predicted quality is above "
                                                                   "this (0.5)")
    text.add_argument("--all-windows", action="store_true",
                      help="read every window of a page, also those without any stroke-like mark (by default "
                           "blank paper, stains and smooth picture areas are not read)")
    text.add_argument("--stroke-threshold", type=float, default=0.0,
                      help="stroke logits above this are ink (0; lower finds fainter ink, and more noise)")


def text_options(args: argparse.Namespace):  # noqa: ANN201
    """(levels, TextOptions) from :func:`add_text_options`' options, checked."""
    from engine.text.hierarchy import TextOptions  # noqa: PLC0415 - torch loads only here
    from engine.text.run import LEVELS  # noqa: PLC0415

    levels = {level.strip() for level in args.levels.split(",") if level.strip()}
    if not levels or levels - set(LEVELS):
        raise MarginaliaError(f"--levels takes {', '.join(LEVELS)}; not {', '.join(sorted(levels - set(LEVELS)))}.")
    if args.window == "page":
        window = None
    elif args.window.isdigit() and int(args.window) >= 64:
        window = int(args.window)
    else:
        raise MarginaliaError(f"--window takes a number of pixels (64 or more) or 'page', not {args.window!r}.")
    if args.points is not None and args.points < 1:
        raise MarginaliaError("--points takes a positive number.")
    if args.max_prompts < 1:
        raise MarginaliaError("--max-prompts takes a positive number.")
    return levels, TextOptions(window=window, points=args.points, max_prompts=args.max_prompts,
                               line_score=args.line_score,
                               nms_score=args.line_score, stroke_threshold=args.stroke_threshold,
                               skip_blank=not args.all_windows)


def cmd_text(args: argparse.Namespace) -> int:
    from engine.models.runtime import ModelManager  # noqa: PLC0415 - torch loads only here
    from engine.models.service import ModelService  # noqa: PLC0415
    from engine.models.store import ModelStore  # noqa: PLC0415
    from engine.batch.tasks.text import TextTask  # noqa: PLC0415
    from engine.text.run import find_text  # noqa: PLC0415

    from cli.batch import page_timer, say_estimate  # noqa: PLC0415

    levels, options = text_options(args)
    with open_project(args.project) as project:
        pages = page_ids(project, args)
        service = ModelService(ModelStore(), ModelManager())
        task = TextTask(args.model, levels, options, "marginalia text")  # the same work as a batch or the GUI's
        say_estimate(project, task, service, "Find Text", pages)
        with progress_bar("Reading text") as progress:
            report = find_text(project, service, args.model, pages, levels, options, creator="marginalia text",
                               progress=page_timer(task, service, progress))
    if args.json:
        json.dump({"model": args.model, "run": report.run_id, "pages": report.pages, "skipped": report.skipped,
                   "paragraphs": report.paragraphs, "lines": report.lines, "words": report.words,
                   "strokes": report.strokes, "seconds_per_page": [round(s, 2) for s in report.seconds],
                   "pages_cut": report.pages_cut},
                  sys.stdout, indent=1)
        print()
    else:
        print(report.summary())
    return 0
