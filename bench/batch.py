"""Batch runs on a local Ray against the same runs in this process: CLIP indexing and Grounding DINO detection.

Full-size CLIP ViT-B-32 and Grounding DINO (tiny; the published shapes, random weights) from a model store,
``--pages`` pages (copies of the shared scans, each a distinct file) imported into two copies of a project.
One copy is indexed and searched for phrases in this process (``marginalia batch`` without ``--cluster``),
the other on a Ray started here with the same cores (``--cluster local``; workers of as many cores as a run
here uses, the product's default, or ``--cpus-per-worker``). Prints one JSON line:

- ``here_s`` / ``ray_s``: per task, seconds from the command to its last page stored (Ray's: with the workers
  starting and loading the model, without the cluster's own start, which is ``cluster_start_s``: a cluster
  is started once, not per run);
- ``ray_vs_here``: per task and in all, Ray's time over this process's (the issue's bound: 1.2);
- ``identical``: per task, whether both copies hold exactly the same vectors, or proposals;
- ``driver_store_ms_per_page``: per task, what storing one page's results costs the one writer (this process),
  the ceiling of a cluster's pages/s however many GPUs it has;
- ``workers``, ``cpus``, ``cpu_flags``.

    .venv/bin/python bench/batch.py [--pages 64] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, cpu_flags, emit  # noqa: E402

MODELS = ("clip-vit-b-32", "grounding-dino-tiny")
SHARED = REPO.parent / "shared" / "data" / "manuscripts"
PHRASES = ("decorated initial", "coat of arms")


def _collection(folder: Path, pages: int, side: int) -> None:
    """Copies of the shared prints, at most ``side`` pixels a side (a detector sees 800-1333 px), each its own
    file."""
    from PIL import Image

    sources = sorted(p for p in SHARED.iterdir() if p.suffix.lower() in (".jpg", ".tif") and ".gt." not in p.name)
    for number in range(pages):
        with Image.open(sources[number % len(sources)]) as image:
            page = image.convert("RGB")
            page.thumbnail((side, side))
            # A distinct file (a pixel changed can be quantised away), the same picture.
            page.save(folder / f"{number:05d}.jpg", quality=90, comment=f"copy {number}")


def _contents(project: object) -> dict[str, object]:
    from sqlalchemy import select

    from engine.store.schema import Annotation, Vector

    with project.unit_of_work() as session:  # type: ignore[attr-defined]
        vectors = {v.image_id: bytes(v.data) for v in session.scalars(select(Vector))}
        boxes = sorted((a.image_id, a.category_id, a.prompt, a.bbox_x, a.bbox_y, a.bbox_w, a.bbox_h, a.score)
                       for a in session.scalars(select(Annotation)))
    return {"index": vectors, "detect": boxes}


def _difference(here: object, ray: object) -> dict[str, object]:
    """How far two runs' results are apart: counts, and the largest difference of any number in them."""
    import numpy as np

    if isinstance(here, dict):
        from engine.retrieval.vectors import unpack

        common = sorted(set(here) & set(ray))  # type: ignore[arg-type]
        gaps = [float(np.abs(unpack(here[key]) - unpack(ray[key])).max()) for key in common]  # type: ignore[index]
        return {"here": len(here), "ray": len(ray), "largest": max(gaps, default=0.0)}  # type: ignore[arg-type]
    pairs = list(zip(here, ray))  # type: ignore[call-overload]
    gaps = [abs(a - b) for left, right in pairs for a, b in zip(left[3:], right[3:]) if a is not None and b is not None]
    return {"here": len(here), "ray": len(ray), "largest": max(gaps, default=0.0),  # type: ignore[arg-type]
            "differing": sum(left != right for left, right in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--side", type=int, default=1600, help="the pages' longer side in pixels (1600)")
    parser.add_argument("--tasks", default="index,detect", help="which of index,detect to run (both)")
    parser.add_argument("--cpus-per-worker", type=float,
                        help="cores per Ray worker (default: the product's, as many as a run here uses; 1: one "
                             "worker per core, faster for some models, not digit for digit the same)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.side = 2, 400

    import ray

    from engine.batch.ray_cluster import start_on_loopback
    from engine.batch.runner import ClusterChoice, run_batch, threads_here
    from engine.batch.tasks.detect import DetectTask
    from engine.batch.tasks.index import IndexTask
    from engine.categories import add_category
    from engine.detection.detect import DetectOptions, PhrasePrompt
    from engine.detection.tiling import Tiling
    from engine.ingest.scan_import import import_scans
    from engine.inventory import list_images
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project

    store = bench_store([MODELS[0]] if args.smoke else list(MODELS), args.smoke)  # the smoke run: the index only
    cpus = os.cpu_count() or 1
    figures: dict[str, object] = {"bench": "batch", "pages": args.pages, "cpus": cpus, "cpu_flags": cpu_flags()}
    with tempfile.TemporaryDirectory() as scratch:
        scans = Path(scratch) / "scans"
        scans.mkdir()
        _collection(scans, args.pages, args.side)
        with Project.create(Path(scratch) / "here") as project:
            import_scans(project, [scans])
            categories = [add_category(project, phrase.capitalize()).id for phrase in PHRASES]
        shutil.copytree(Path(scratch) / "here", Path(scratch) / "ray")

        def tasks() -> list[object]:
            prompts = [PhrasePrompt(phrase, category) for phrase, category in zip(PHRASES, categories, strict=True)]
            detect = DetectTask(MODELS[1], prompts, DetectOptions(tiling=Tiling.OFF), creator="bench")
            chosen = {"index": IndexTask(MODELS[0]), "detect": detect}
            # The smoke run: the index alone (each task on Ray starts its workers; the loop is the same).
            return [chosen[name] for name in (["index"] if args.smoke else args.tasks.split(","))]

        timings: dict[str, dict[str, float]] = {"here": {}, "ray": {}}
        store_ms: dict[str, float] = {}
        contents = {}
        for where in ("here", "ray"):
            cluster = None
            if where == "ray":
                started = time.perf_counter()
                start_on_loopback(ray, num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                                  logging_level="ERROR")
                figures["cluster_start_s"] = round(time.perf_counter() - started, 2)
                # One worker per core; the smoke run one worker in all (beside the other tests, on two cores).
                cluster = ClusterChoice("local", cpus_per_worker=float(cpus) if args.smoke else args.cpus_per_worker)
            service = ModelService(store, ModelManager(device=DeviceChoice("cpu")))
            with Project.open(Path(scratch) / where) as project:
                pages = [row.id for row in list_images(project)]
                figures["pages"] = len(pages)
                for task in tasks():
                    started = time.perf_counter()
                    report = run_batch(project, service, task, pages, cluster)
                    timings[where][task.name] = round(time.perf_counter() - started, 2)
                    assert not report.failed, report.failed
                    if report.workers:
                        figures["workers"] = len(report.workers)
                        figures["cores_per_worker"] = args.cpus_per_worker or threads_here()
                        store_ms[task.name] = round(1000 * report.store_seconds / max(report.done, 1), 2)
                contents[where] = _contents(project)
        ray.shutdown()
    figures["here_s"], figures["ray_s"] = timings["here"], timings["ray"]
    figures["ray_vs_here"] = {**{name: round(timings["ray"][name] / timings["here"][name], 3)
                                 for name in timings["here"]},
                              "all": round(sum(timings["ray"].values()) / sum(timings["here"].values()), 3)}
    figures["driver_store_ms_per_page"] = store_ms
    figures["identical"] = {name: contents["here"][name] == contents["ray"][name] and bool(contents["here"][name])
                            for name in timings["here"]}
    figures["vectors"], figures["proposals"] = len(contents["here"]["index"]), len(contents["here"]["detect"])
    if not all(figures["identical"].values()):
        figures["differences"] = {name: _difference(contents["here"][name], contents["ray"][name])
                                  for name, same in figures["identical"].items() if not same}
    emit(figures)
    if not all(figures["identical"].values()):
        sys.exit("bench/batch.py: the runs on Ray and here differ")


if __name__ == "__main__":
    main()
