"""Query latency of the search index: top-100 over 100,000 and 1,000,000 random 512-d unit vectors.

The index is the product's own (``engine.retrieval.index.VectorIndex``): exact
up to 200,000 vectors, beyond that every vector scanned as a 4-bit product
code and the best candidates re-ranked exactly (here from the vectors in
memory; ``fetch_ms_db`` is the product's own re-ranking read: the candidates
by id from a project database of 100,000). ``update_ms`` adds 1,000 vectors
to the 1,000,000 and ``remove_ms`` removes 1,000, as the index follows the
database. The query vector is already embedded (``bench/clip_cold_search.py``
times a query from a cold process). Recall@100 is measured against an exact scan of the
same data: on uniformly random vectors (the issue's data, and the worst case
for any partitioned index: there are no neighbourhoods to find) and on a
clustered million (20,000 groups of varied spread, queries near a member),
which is closer to how embeddings of a real collection lie. Prints one JSON
line.

    .venv/bin/python bench/clip_search.py [--queries 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import emit  # noqa: E402

DIMENSION = 512
TOP = 100


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _random(rng: np.random.Generator, count: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    return (_unit(rng.standard_normal((count, DIMENSION), dtype=np.float32)),
            _unit(rng.standard_normal((queries, DIMENSION), dtype=np.float32)))


def _clustered(rng: np.random.Generator, count: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    centres = _unit(rng.standard_normal((20_000, DIMENSION), dtype=np.float32))
    vectors = np.empty((count, DIMENSION), np.float32)
    for start in range(0, count, 100_000):
        group = rng.integers(0, len(centres), min(100_000, count - start))
        spread = rng.uniform(0.5, 1.5, (len(group), 1)).astype(np.float32) / np.sqrt(DIMENSION)
        vectors[start:start + len(group)] = _unit(centres[group] + spread * rng.standard_normal(
            (len(group), DIMENSION), dtype=np.float32))
    near = vectors[rng.integers(0, count, queries)]
    return vectors, _unit(near + 0.3 / np.sqrt(DIMENSION) * rng.standard_normal(near.shape, dtype=np.float32))


def _measure(index: object, vectors: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    index.search(queries[:1], TOP)  # warm-up
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, hit_ids = index.search(query[None], TOP)
        times.append((time.perf_counter() - started) * 1000)
        found.append(hit_ids[0])
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :TOP] + 1
    recall = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(found, exact, strict=True)])
    return {"p50": round(float(np.percentile(times, 50)), 2), "p90": round(float(np.percentile(times, 90)), 2),
            "recall": round(float(recall), 3)}


def _time_updates(figures: dict[str, object], index: object, new: np.ndarray, count: int) -> None:
    if "update_ms" in figures:
        return
    new_ids = np.arange(count + 1, count + 1 + len(new), dtype=np.int64)
    started = time.perf_counter()
    index.add(new_ids, new)
    figures["update_ms"] = round((time.perf_counter() - started) * 1000, 1)
    started = time.perf_counter()
    index.remove(new_ids)
    figures["remove_ms"] = round((time.perf_counter() - started) * 1000, 1)


def _fetch_from_database(rows: int) -> float:
    """Median ms to read the candidates of one top-100 query by id from a project database holding ``rows`` of them."""
    import tempfile

    from engine.project import Project
    from engine.retrieval.index import CANDIDATES
    from engine.retrieval.vectors import pack, vectors_by_id
    from engine.store.schema import Image, Vector

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder, Project.create(Path(folder) / "p", name="bench") as project:
        with project.unit_of_work() as session:
            session.add(Image(path="/nowhere.png", sha256="0" * 64, page_index=0, width=1, height=1,
                              format="PNG", mode="RGB", file_size=1, file_mtime=0.0))
            session.flush()
            for start in range(0, rows, 10_000):
                block = _unit(rng.standard_normal((min(10_000, rows - start), DIMENSION), dtype=np.float32))
                session.add_all([Vector(model_id="m", image_id=1, annotation_id=None, content="c",
                                        data=pack(vector)) for vector in block])
        times = []
        for _ in range(7):
            wanted = np.sort(rng.choice(np.arange(1, rows + 1), CANDIDATES * TOP, replace=False))
            started = time.perf_counter()
            vectors_by_id(project, wanted)
            times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 1)


def _cold_search(smoke: bool) -> dict[str, float]:
    """Seconds for ``marginalia search PROJECT "…"`` in a fresh process (median of 3; once in smoke), through the exported
    text tower, and once through torch with the tower moved aside (the way it was before the tower; not in smoke,
    where it would add a cold torch start, and ``tests/test_text_tower.py`` checks that search there)."""
    import os
    import shutil
    import subprocess
    import tempfile

    from harness import REPO, bench_store

    from engine.ingest.scan_import import import_scans
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.project import Project
    from engine.retrieval.indexer import index_project
    from engine.retrieval.search import _tower_place
    from engine.retrieval.text_tower import tower_folder

    model = "clip-vit-b-32"
    store = bench_store([model], smoke)
    service = ModelService(store, ModelManager(device=DeviceChoice("cpu")))
    env = {**os.environ, "MARGINALIA_MODELS": str(store.root), "MARGINALIA_DEVICE": "cpu"}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "project"
        with Project.create(folder, name="cold search") as project:
            import_scans(project, [REPO.parent / "shared" / "data" / "artworks"])
            index_project(project, service, model, batch_size=4)  # exports the text tower at its end
        service.manager.unload_all()

        def once() -> float:
            started = time.perf_counter()
            done = subprocess.run([sys.executable, str(REPO / "main.py"), "search", str(folder), "a ship in a storm",
                                   "-k", "3"], capture_output=True, text=True, env=env, timeout=300)
            assert done.returncode == 0, done.stderr
            return time.perf_counter() - started

        timed = sorted(once() for _ in range(1 if smoke else 3))  # smoke: that it runs, not its spread
        if smoke:
            return {"cold_search_s": round(timed[0], 2)}
        tower = tower_folder(*_tower_place(service, model))
        aside = Path(scratch) / "tower"
        shutil.move(tower, aside)
        through_torch = once()
        shutil.rmtree(tower, ignore_errors=True)  # exported again by that run: put the measured one back
        shutil.move(aside, tower)
    return {"cold_search_s": round(timed[len(timed) // 2], 2), "cold_search_torch_s": round(through_torch, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--smoke", action="store_true",
                        help="5,000 vectors, the compressed index forced, to check that the bench still works")
    args = parser.parse_args()
    import faiss

    from engine.retrieval.index import EXACT_LIMIT, VectorIndex

    cases = (("100k", 100_000, _random), ("1m", 1_000_000, _random), ("1m_clustered", 1_000_000, _clustered))
    exact_limit = EXACT_LIMIT
    if args.smoke:
        # Past the exact limit, so the compressed index is built, trained and reranked, on the fewest vectors
        args.queries, cases, exact_limit = 5, (("2k", 2_000, _random), ("2k_clustered", 2_000, _clustered)), 1_000

    rng = np.random.default_rng(0)
    figures: dict[str, object] = {"bench": "clip_search", "dimension": DIMENSION, "top": TOP,
                                  "faiss_threads": faiss.omp_get_max_threads()}
    for label, count, make in cases:
        vectors, queries = make(rng, count, args.queries)
        ids = np.arange(1, count + 1, dtype=np.int64)
        started = time.perf_counter()
        index = VectorIndex.build(ids, vectors, exact_limit=exact_limit)
        figures[f"build_s_{label}"] = round(time.perf_counter() - started, 1)
        measured = _measure(index, vectors, queries)
        figures[f"p50_ms_{label}"], figures[f"p90_ms_{label}"] = measured["p50"], measured["p90"]
        figures[f"recall_at_{TOP}_{label}"] = measured["recall"]
        figures[f"index_{label}"] = ("4-bit PQ scan + exact rerank" if index.compressed else "exact")
        if label.startswith("1m") or (args.smoke and label == "2k"):
            _time_updates(figures, index, make(rng, 1_000, 1)[0], count)
        del index, vectors
    figures["fetch_ms_db"] = _fetch_from_database(3_000 if args.smoke else 100_000)  # ≥ one query's candidates
    figures.update(_cold_search(args.smoke))
    emit(figures)


if __name__ == "__main__":
    main()
