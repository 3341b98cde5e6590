"""``marginalia attention`` (a page's attention map as a PNG) and ``discover`` (what stands out → proposals)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.commands import add_page_choice, open_project, page_ids
from cli.progress import progress_bar
from engine.errors import MarginaliaError
from engine.paths import displayable

DEFAULT_MODEL = "dino-vits8"


def add_parsers(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    attention = sub.add_parser("attention", parents=[debug], help="a page's attention map (DINO) as a PNG",
                               description="Write what a DINO model attends to on a page as a heat map (inferno: "
                                           "dark = little attention, yellow = most), alone or over the page.")
    attention.add_argument("project")
    attention.add_argument("image", type=int, metavar="IMAGE", help="the page's id (see 'marginalia list')")
    attention.add_argument("--out", required=True, type=Path, metavar="FILE.png")
    attention.add_argument("--model", default=DEFAULT_MODEL, help=f"a DINO model id (default {DEFAULT_MODEL})")
    attention.add_argument("--head", default="mean", help="mean, max, or a head's number (0 …)")
    attention.add_argument("--overlay", action="store_true", help="draw the map over the page (in grey)")
    attention.add_argument("--pca", action="store_true", help="DINOv2: the patch features' first three principal "
                                                               "components as colours, instead of attention")
    attention.add_argument("--patches", type=int, default=112, help="patches along the page's longer side (112)")
    attention.set_defaults(handler=cmd_attention)

    discover = sub.add_parser("discover", parents=[debug], help="propose the regions that stand out (DINO attention)",
                              description="Propose, on each page, the regions holding most of a DINO model's "
                                          "attention (initials, illustrations, stamps, figures), as masks in the "
                                          "'Salient region' category. Pages done before are skipped.")
    discover.add_argument("project")
    add_page_choice(discover)
    add_discover_options(discover)
    discover.add_argument("--sam", metavar="MODEL", help="refine each region into SAM's mask for its box")
    discover.add_argument("--json", action="store_true", help="machine-readable output")
    discover.set_defaults(handler=cmd_discover)


def add_discover_options(discover: argparse.ArgumentParser) -> None:
    """The options ``discover`` and ``batch … discover`` share (read back with :func:`discover_options`)."""
    discover.add_argument("--model", default=DEFAULT_MODEL, help=f"a DINO model id (default {DEFAULT_MODEL})")
    discover.add_argument("--head", default="mean", help="mean, max, or a head's number")
    discover.add_argument("--share", type=float, default=0.6, help="share of the attention mass the regions "
                                                                   "hold (0.6, as in the DINO paper)")


def discover_options(args: argparse.Namespace):  # noqa: ANN201
    from engine.attention.run import DiscoverOptions  # noqa: PLC0415

    if not 0.0 < args.share <= 1.0:
        raise MarginaliaError("--share is a share of the attention mass, between 0 and 1.")
    return DiscoverOptions(head=_head(args.head), share=args.share)


def _head(text: str) -> str | int:
    if text in ("mean", "max"):
        return text
    if text.isdigit():
        return int(text)
    raise MarginaliaError(f"--head takes mean, max or a head's number, not {text!r}.")


def _service():  # noqa: ANN202
    from engine.models.runtime import ModelManager  # noqa: PLC0415 - torch loads only here
    from engine.models.service import ModelService  # noqa: PLC0415
    from engine.models.store import ModelStore  # noqa: PLC0415

    return ModelService(ModelStore(), ModelManager())


def cmd_attention(args: argparse.Namespace) -> int:
    from engine.attention.render import map_image  # noqa: PLC0415
    from engine.attention.run import attention_for  # noqa: PLC0415
    from engine.fileio import write_atomically  # noqa: PLC0415
    from engine.imaging.isolated import load_page_isolated  # noqa: PLC0415
    from engine.inventory import readable_pages  # noqa: PLC0415

    head = _head(args.head)
    if args.out.suffix.lower() != ".png":
        raise MarginaliaError("--out names a .png file.")
    with open_project(args.project) as project:
        (row,) = readable_pages(project, page_ids(project, argparse.Namespace(all=False, pages=str(args.image))))
        attention, _ = attention_for(project, _service(), args.model, row, args.patches)
    if args.pca and attention.pca is None:
        raise MarginaliaError(f"{args.model} has no register tokens: the feature picture (--pca) needs a "
                              "DINOv2 model with registers, such as dinov2-reg-small.")
    page = load_page_isolated(Path(row.path), row.page_index, image_format=row.format) if args.overlay else None
    picture = map_image(attention, head, features=args.pca, page=page)
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    write_atomically(args.out, buffer.getvalue())
    print(f"Wrote {displayable(str(args.out))} ({picture.width}×{picture.height}, {args.model}, head {args.head}, "
          f"{attention.grid[1]}×{attention.grid[0]} patches)")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from engine.attention.run import discover  # noqa: PLC0415
    from engine.batch.tasks.discover import DiscoverTask  # noqa: PLC0415

    from cli.batch import page_timer, say_estimate  # noqa: PLC0415 - it imports this module

    options = discover_options(args)
    with open_project(args.project) as project:
        pages = page_ids(project, args)
        service = _service()
        refine = None
        if args.sam:
            from engine.segmentation.embeddings import EmbeddingCache  # noqa: PLC0415
            from engine.segmentation.segmenter import Segmenter  # noqa: PLC0415

            refine = Segmenter(service, EmbeddingCache.of_project(project.folder), args.sam)
        task = DiscoverTask(args.model, options, "marginalia discover", refine)  # the same work as the GUI's
        say_estimate(project, task, service, "Propose regions", pages)
        with progress_bar("Looking") as progress:
            report = discover(project, service, args.model, pages, options, creator="marginalia discover",
                              refine=refine, progress=page_timer(task, service, progress))
        if args.json:
            from engine.annotations import annotations_of_run  # noqa: PLC0415

            found = [{"id": a.id, "page": a.image_id, "bbox": [round(v, 2) for v in a.bbox], "score": a.score}
                     for a in annotations_of_run(project, report.run_id)]
            json.dump({"model": args.model, "run": report.run_id, "pages": report.pages, "skipped": report.skipped,
                       "proposed": report.proposed, "computed": report.model_runs, "proposals": found}, sys.stdout,
                      indent=1)
            print()
        else:
            print(report.summary())
    return 0
