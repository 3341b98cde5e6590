"""``marginalia detect``: find regions by description (Grounding DINO) on a project's pages."""

from __future__ import annotations

import argparse
import json
import sys

from cli.commands import add_page_choice, open_project, page_ids
from cli.progress import progress_bar
from engine.categories import add_category, list_categories
from engine.errors import MarginaliaError

DEFAULT_MODEL = "grounding-dino-tiny"


def add_parser(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    detect = sub.add_parser("detect", parents=[debug], help="find regions by description; they become proposals")
    detect.add_argument("project")
    add_page_choice(detect)
    add_detect_options(detect)
    detect.add_argument("--sam", metavar="MODEL", help="refine every new box into a mask with this SAM model "
                                                      "(e.g. sam-vit-b)")
    detect.add_argument("--json", action="store_true", help="machine-readable output")
    detect.set_defaults(handler=cmd_detect)


def add_detect_options(detect: argparse.ArgumentParser) -> None:
    """The options ``detect`` and ``batch … detect`` share (read back with :func:`detect_options`)."""
    detect.add_argument("--phrase", action="append", required=True, metavar="PHRASE=CATEGORY",
                        help="what to look for and the category its boxes go to, e.g. "
                             "\"decorated initial=Decorated initial\" (repeatable)")
    detect.add_argument("--box-threshold", type=float, default=0.35, help="keep boxes scoring above this (0.35)")
    detect.add_argument("--text-threshold", type=float, default=0.25,
                        help="a box names a phrase when the phrase's words score above this (0.25)")
    detect.add_argument("--tiles", choices=["auto", "on", "fine", "off"], default="auto",
                        help="also look at large pages in a few large parts of what is on them (not blank margins "
                             "or the scanner's bed), closer than the whole page (auto: when large); fine: in 800-px "
                             "squares at the page's own scale, for the smallest marks (many times slower)")
    detect.add_argument("--create-categories", action="store_true", help="create categories that do not exist")
    detect.add_argument("--model", default=DEFAULT_MODEL, help=f"a Grounding DINO model id (default {DEFAULT_MODEL})")


def detect_options(project, args: argparse.Namespace):  # noqa: ANN001, ANN201
    """(phrase prompts, DetectOptions) from :func:`add_detect_options`' options; categories made if asked."""
    from engine.detection.detect import DetectOptions  # noqa: PLC0415 - torch loads only here
    from engine.detection.tiling import Tiling  # noqa: PLC0415

    for name in ("box_threshold", "text_threshold"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise MarginaliaError(f"--{name.replace('_', '-')} is a score between 0 and 1.")
    prompts = _prompts(project, args.phrase, args.create_categories)
    return prompts, DetectOptions(args.box_threshold, args.text_threshold, Tiling(args.tiles))


def _prompts(project, pairs: list[str], create: bool):  # noqa: ANN001, ANN202
    from engine.detection.detect import PhrasePrompt

    known = {c.name.casefold(): c.id for c in list_categories(project)}
    prompts = []
    for pair in pairs:
        phrase, _, category = pair.partition("=")
        phrase, category = phrase.strip(), (category or phrase).strip()
        if not phrase:
            raise MarginaliaError(f"--phrase {pair!r} names nothing to look for.")
        if category.casefold() not in known:
            if not create:
                raise MarginaliaError(f"There is no category “{category}”; the project has: "
                                      f"{', '.join(sorted(c.name for c in list_categories(project))) or 'none'}. "
                                      "Add --create-categories to create it.")
            known[category.casefold()] = add_category(project, category).id
        prompts.append(PhrasePrompt(phrase, known[category.casefold()]))
    return prompts


def cmd_detect(args: argparse.Namespace) -> int:
    from engine.batch.tasks.detect import DetectTask  # noqa: PLC0415 - torch loads only here
    from engine.detection.detect import detect  # noqa: PLC0415
    from engine.models.runtime import ModelManager  # noqa: PLC0415
    from engine.models.service import ModelService  # noqa: PLC0415
    from engine.models.store import ModelStore  # noqa: PLC0415

    from cli.batch import page_timer, say_estimate  # noqa: PLC0415 - it imports this module

    with open_project(args.project) as project:
        prompts, options = detect_options(project, args)
        pages = page_ids(project, args)
        service = ModelService(ModelStore(), ModelManager())
        refine = None
        if args.sam:
            from engine.segmentation.embeddings import EmbeddingCache  # noqa: PLC0415
            from engine.segmentation.segmenter import Segmenter  # noqa: PLC0415

            refine = Segmenter(service, EmbeddingCache.of_project(project.folder), args.sam)
        task = DetectTask(args.model, prompts, options, "marginalia detect", refine)  # the same work as the GUI's
        say_estimate(project, task, service, "Find by description", pages)
        with progress_bar("Finding") as progress:
            report = detect(project, service, args.model, pages, prompts, options, creator="marginalia detect",
                            refine=refine, progress=page_timer(task, service, progress))
        if args.json:
            from engine.annotations import annotations_of_run  # noqa: PLC0415

            found = [{"id": a.id, "page": a.image_id, "phrase": a.prompt, "category_id": a.category_id,
                      "bbox": [round(v, 2) for v in a.bbox], "mask": a.rle is not None, "score": a.score}
                     for a in annotations_of_run(project, report.run_id)]
            json.dump({"model": args.model, "run": report.run_id, "pages": report.pages,
                       "model_runs": report.model_runs, "proposed": report.proposed,
                       "already_proposed": report.already_proposed, "proposals": found}, sys.stdout, indent=1)
            print()
        else:
            print(report.summary())
    return 0
