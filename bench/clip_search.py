"""Query latency of the search index: top-100 over 100,000 and 1,000,000 random 512-d unit vectors.

The index is the product's own (``engine.retrieval.index.VectorIndex``): exact
up to 200,000 vectors, an inverted-file index beyond. The query vector is
already embedded (text encoding is not timed). For the inverted-file index it
also reports recall@100 against the exact answer on the same data. Prints one
JSON line.

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


def _unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()

    import faiss

    from engine.retrieval.index import VectorIndex

    rng = np.random.default_rng(0)
    figures: dict[str, object] = {"bench": "clip_search", "dimension": DIMENSION, "top": TOP,
                                  "faiss_threads": faiss.omp_get_max_threads()}
    for label, count in (("100k", 100_000), ("1m", 1_000_000)):
        vectors = _unit(rng, count)
        ids = np.arange(1, count + 1, dtype=np.int64)
        started = time.perf_counter()
        index = VectorIndex.build(ids, vectors)
        figures[f"build_s_{label}"] = round(time.perf_counter() - started, 1)
        queries = _unit(rng, args.queries)
        index.search(queries[:1], TOP)  # warm-up
        times, found = [], []
        for query in queries:
            started = time.perf_counter()
            scores, hit_ids = index.search(query[None], TOP)
            times.append((time.perf_counter() - started) * 1000)
            found.append(hit_ids[0])
        figures[f"p50_ms_{label}"] = round(float(np.percentile(times, 50)), 2)
        figures[f"p90_ms_{label}"] = round(float(np.percentile(times, 90)), 2)
        figures[f"index_{label}"] = type(index.index).__name__
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :TOP] + 1
        recall = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(found, exact, strict=True)])
        figures[f"recall_at_{TOP}_{label}"] = round(float(recall), 3)
        del index, vectors
    emit(figures)


if __name__ == "__main__":
    main()
