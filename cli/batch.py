"""``marginalia batch PROJECT TASK``: a model over many pages, here or on a Ray cluster."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli import attention, detect, text
from cli.commands import EXIT_FAILED, EXIT_OK, add_page_choice, open_project, page_ids
from cli.progress import progress_bar
from engine.errors import MarginaliaError

EPILOG = """\
where it runs:
  without --cluster     in this process, exactly as the task's own command (detect, text, …)
  --cluster local       a Ray started on this computer for this run (its cores; listens on 127.0.0.1 only)
  --cluster auto        the Ray cluster this computer belongs to (started with 'ray start'), or RAY_ADDRESS
  --cluster ADDRESS     a Ray cluster's address, e.g. ray://head.library.org:10001

On a cluster, each worker loads the model once (one worker per GPU; on CPUs, --cpus-per-worker cores each)
and reads the scans itself where it sees them at the same path with the same content (a shared folder);
otherwise this computer decodes them and sends them. Workers find the models in this computer's models
folder, or --worker-models: install the same models there ('marginalia models install ID'); a worker with
other weights refuses to run. This computer writes every result into the project, in batches, one
transaction each. Pages already done are skipped, so an interrupted run is resumed by running it again;
Ctrl+C stops within seconds and keeps every finished page; a page that fails is listed with its reason.

Ray is optional: pip install "marginalia[cluster]" (on this computer and the cluster's, same versions).

examples:
  marginalia batch books/ index --all --cluster auto
  marginalia batch books/ detect --all --phrase "decorated initial=Initial" --cluster ray://head:10001
  marginalia batch books/ text --pages 4,5,6 --cluster local
"""


@dataclass(frozen=True, slots=True)
class _TaskCommand:
    """How the command line makes one task: its options, and the task from them."""

    add_options: Callable[[argparse.ArgumentParser], None]
    build: Callable[[Any, argparse.Namespace], Any]


def _model_option(default: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default=default, help=f"the model id (default {default})")
    return add


def _detect(project: Any, args: argparse.Namespace) -> Any:
    from engine.batch.tasks.detect import DetectTask  # noqa: PLC0415 - torch loads only here

    prompts, options = detect.detect_options(project, args)
    return DetectTask(args.model, prompts, options, creator="marginalia batch detect")


def _text(project: Any, args: argparse.Namespace) -> Any:
    from engine.batch.tasks.text import TextTask  # noqa: PLC0415

    levels, options = text.text_options(args)
    return TextTask(args.model, levels, options, creator="marginalia batch text")


def _discover(project: Any, args: argparse.Namespace) -> Any:
    from engine.batch.tasks.discover import DiscoverTask  # noqa: PLC0415

    return DiscoverTask(args.model, attention.discover_options(args), creator="marginalia batch discover")


def _prepare_sam(project: Any, args: argparse.Namespace) -> Any:
    from engine.batch.tasks.prepare_sam import PrepareSamTask  # noqa: PLC0415

    return PrepareSamTask(args.model)


def _index(project: Any, args: argparse.Namespace) -> Any:
    from engine.batch.tasks.index import IndexTask  # noqa: PLC0415

    return IndexTask(args.model)


_COMMANDS: dict[str, tuple[str, _TaskCommand]] = {
    "prepare-sam": ("encode pages for SAM ahead of clicking", _TaskCommand(_model_option("sam-vit-b"), _prepare_sam)),
    "index": ("CLIP vectors of pages for search", _TaskCommand(_model_option("clip-vit-b-32"), _index)),
    "detect": ("boxes for phrases (Grounding DINO)", _TaskCommand(detect.add_detect_options, _detect)),
    "text": ("text strokes, paragraphs, lines and words (Hi-SAM)", _TaskCommand(text.add_text_options, _text)),
    "discover": ("regions that stand out (DINO attention)", _TaskCommand(attention.add_discover_options, _discover)),
    "attention": ("the same as discover", _TaskCommand(attention.add_discover_options, _discover)),
}


def add_parser(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    where = argparse.ArgumentParser(add_help=False)
    add_page_choice(where)
    where.add_argument("--cluster", metavar="local|auto|ADDRESS",
                       help="run on a Ray cluster (see below); without it, in this process")
    where.add_argument("--cpus-per-worker", type=float, metavar="N",
                       help="on clusters without GPUs: cores per worker (default: as many as a run here uses, "
                            "so that workers give exactly the numbers a run here gives; fewer cores per worker "
                            "can be faster, with differences in the last digits and now and then a box)")
    where.add_argument("--worker-models", metavar="FOLDER",
                       help="where workers find the models (default: this computer's models folder)")
    where.add_argument("--ship-pages", action="store_true",
                       help="always send decoded pages to the workers (for workers that see none of the scans)")
    where.add_argument("--json", action="store_true", help="machine-readable output")
    batch = sub.add_parser("batch", parents=[debug], help="run a model over many pages, here or on a Ray cluster",
                           description="Run one model task over pages of a project, in this process or on a Ray "
                                       "cluster; the results become the same proposals, masks, vectors and "
                                       "scores either way.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("project", metavar="PROJECT")
    tasks = batch.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, (summary, command) in _COMMANDS.items():
        task = tasks.add_parser(name, parents=[debug, where], help=summary, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_options(task)
        task.set_defaults(handler=cmd_batch)


def say_estimate(project: Any, task: Any, service: Any, what: str, pages: list[int]) -> None:
    """Before a run here: how long this computer takes for it, on standard error (``--json`` keeps stdout)."""
    from engine.batch.estimates import WorkCosts, estimate_for  # noqa: PLC0415
    from engine.inventory import list_images  # noqa: PLC0415

    guess = estimate_for(WorkCosts(), task, service, project, list_images(project, pages), what)
    print(f"{guess.sentence()}.", file=sys.stderr, flush=True)


def page_timer(task: Any, service: Any, progress: Any) -> Any:
    """``progress`` for a job of ``task``'s work run here by its own command, timing each page it reads for the
    next estimate (as a batch run here does)."""
    from engine.batch.estimates import PageTimer, WorkCosts, work_kind  # noqa: PLC0415

    return PageTimer(WorkCosts(), work_kind(task, service), progress)


def cmd_batch(args: argparse.Namespace) -> int:
    from engine.batch.runner import ClusterChoice, run_batch  # noqa: PLC0415 - torch loads only here
    from engine.models.runtime import ModelManager  # noqa: PLC0415
    from engine.models.service import ModelService  # noqa: PLC0415
    from engine.models.store import ModelStore  # noqa: PLC0415

    if args.cpus_per_worker is not None and args.cpus_per_worker <= 0:
        raise MarginaliaError("--cpus-per-worker takes a positive number of cores.")
    cluster = None
    if args.cluster:
        from engine.batch.ray_cluster import import_ray  # noqa: PLC0415

        import_ray()  # before anything else: without Ray, say how to get it
        cluster = ClusterChoice(args.cluster, args.cpus_per_worker, args.worker_models, args.ship_pages)
    elif args.cpus_per_worker or args.worker_models or args.ship_pages:
        raise MarginaliaError("--cpus-per-worker, --worker-models and --ship-pages are for --cluster runs.")
    with open_project(args.project) as project:
        pages = page_ids(project, args)
        task = _COMMANDS[args.task][1].build(project, args)
        service = ModelService(ModelStore(), ModelManager())
        if cluster is None:
            say_estimate(project, task, service, task.verb, pages)
        with progress_bar(task.verb) as progress:
            report = run_batch(project, service, task, pages, cluster, progress=progress)
    if args.json:
        json.dump({"task": report.task, "model": task.model_id, "cluster": args.cluster, "run": report.run_id,
                   "pages": report.pages, "done": report.done, "skipped": report.skipped,
                   "failed": [{"page": page, "name": name, "reason": reason} for page, name, reason in report.failed],
                   "workers": report.workers, "seconds": round(report.seconds, 2), "cancelled": report.cancelled,
                   "summary": report.summary}, sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        print(report.summary)
        for page, name, reason in report.failed:
            print(f"failed     page {page} ({name}): {reason}")
        if report.workers:
            print(f"{report.done} page(s) on {len(report.workers)} worker(s) in {report.seconds:.0f} s")
    if report.cancelled:
        return 130
    return EXIT_FAILED if report.failed and not report.done and not report.skipped else EXIT_OK
