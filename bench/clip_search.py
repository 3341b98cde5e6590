"""Query latency of the search index: top-100 over 100,000 and 1,000,000 random 512-d unit vectors.

The index is the product's own (``engine.retrieval.index.VectorIndex``): exact
up to 200,000 vectors, beyond that a compressed inverted-file index whose
candidates are re-ranked exactly. The query vector is already embedded (text
encoding is not timed). Recall@100 is measured against an exact scan of the
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
        args.queries, cases, exact_limit = 5, (("5k", 5_000, _random), ("5k_clustered", 5_000, _clustered)), 2_000

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
        figures[f"index_{label}"] = type(index.index).__name__ + ("+exact rerank" if index.exact else "")
        del index, vectors
    emit(figures)


if __name__ == "__main__":
    main()
