"""``marginalia index / search / similar``: collection search from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.commands import open_project
from cli.progress import progress_bar
from engine.inventory import list_images
from engine.project import Project

DEFAULT_MODEL = "clip-vit-b-32"


def add_parsers(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    index = sub.add_parser("index", parents=[debug],
                           help="embed a project's pages and accepted regions for search (incremental)")
    index.add_argument("project")
    index.add_argument("--model", default=DEFAULT_MODEL, help=f"a CLIP model id (default {DEFAULT_MODEL})")
    index.add_argument("--batch", type=int, default=16, help="pages per model batch")
    index.set_defaults(handler=cmd_index)
    search = sub.add_parser("search", parents=[debug], help="find pages by words (any language with a "
                                                             "multilingual model)")
    search.add_argument("project")
    search.add_argument("query")
    _ranking_options(search)
    search.set_defaults(handler=cmd_search)
    similar = sub.add_parser("similar", parents=[debug], help="find pages like a page of the project, or like an "
                                                               "image file")
    similar.add_argument("project")
    similar.add_argument("image", metavar="IMAGE", help="a page's id (see 'marginalia list') or an image file")
    _ranking_options(similar)
    similar.set_defaults(handler=cmd_similar)


def _ranking_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-k", type=int, default=20, help="how many results (default 20)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the CLIP model the index was built with")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _service():  # noqa: ANN202
    from engine.models.runtime import ModelManager
    from engine.models.service import ModelService
    from engine.models.store import ModelStore

    return ModelService(ModelStore(), ModelManager())


def cmd_index(args: argparse.Namespace) -> int:
    from engine.retrieval.indexer import index_collection

    with open_project(args.project) as project, progress_bar("Indexing") as progress:
        result = index_collection(project, _service(), args.model, batch_size=args.batch, progress=progress)
    print(f"Indexed with {args.model}: {result.summary()}")
    for path, reason in [*result.pages.failed, *result.regions.failed]:
        print(f"  {path}: {reason}", file=sys.stderr)
    return 0


def _print_hits(project: Project, hits: list, args: argparse.Namespace, what: str) -> int:
    rows = {row.id: row for row in list_images(project, [hit.image_id for hit in hits])}
    results = [{"rank": rank, "image_id": hit.image_id, "score": round(hit.score, 6),
                "path": rows[hit.image_id].path, "page": rows[hit.image_id].page_number,
                "title": rows[hit.image_id].title, "annotation_id": hit.annotation_id}
               for rank, hit in enumerate(hits, 1) if hit.image_id in rows]
    if args.json:
        json.dump({"query": what, "model": args.model, "results": results}, sys.stdout, ensure_ascii=False,
                  indent=1)
        print()
        return 0
    print(f"{len(results)} result(s) for {what} ({args.model}):")
    for item in results:
        region = f" region #{item['annotation_id']}" if item["annotation_id"] is not None else ""
        print(f"{item['rank']:>4}  {item['score']:.3f}  #{item['image_id']:<5} {item['title'] or item['path']}{region}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from engine.retrieval.search import search_text

    with open_project(args.project) as project:
        hits = search_text(project, _service(), args.model, args.query, k=args.k, pages_only=False)
        return _print_hits(project, hits, args, json.dumps(args.query, ensure_ascii=False))


def cmd_similar(args: argparse.Namespace) -> int:
    from engine.retrieval.search import similar_to_file, similar_to_page

    example = Path(args.image)
    with open_project(args.project) as project:
        if args.image.isdigit() and not example.exists():
            hits = similar_to_page(project, args.model, int(args.image), k=args.k)
            return _print_hits(project, hits, args, f"page #{args.image}")
        hits = similar_to_file(project, _service(), args.model, example, k=args.k)
        return _print_hits(project, hits, args, str(example))
