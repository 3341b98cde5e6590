"""The FAISS index over a model's vectors, derived from the database and kept consistent with it.

Inner product on unit vectors is the cosine similarity. Up to
``EXACT_LIMIT`` vectors the index is exact (a flat scan, scores equal a direct
matrix product). Beyond, an inverted-file index of 8-bit compressed vectors
finds ``RERANKED`` × k candidates in the nearest ``PROBED_LISTS`` lists, and
the candidates are re-ranked with the exact vectors (kept beside the index,
memory-mapped), so the scores shown are always exact. Compression makes each
probed list four times cheaper to scan, so more of them fit in the time
budget: on this project's 2-core machine, p50 ≈ 30 ms over 1,000,000 vectors.

The index is saved in the project's cache with the database fingerprint it was
built from; when the database changed behind its back (a crash mid-job, pages
deleted), it is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.fileio import write_atomically
from engine.project import Project
from engine.retrieval.vectors import load_vectors, vector_fingerprint

EXACT_LIMIT = 200_000
PROBED_LISTS = 256
RERANKED = 4  # candidates per wanted result, re-scored exactly
FORMAT = 2  # of the saved files; older ones are rebuilt


def _faiss():  # noqa: ANN202 - imported when search is first used
    import faiss

    return faiss


@dataclass
class ExactVectors:
    """The vectors behind a compressed index, for re-ranking: ids ``[N]`` sorted, vectors ``[N, D]``."""

    ids: np.ndarray
    vectors: np.ndarray

    @classmethod
    def of(cls, ids: np.ndarray, vectors: np.ndarray) -> ExactVectors:
        if len(ids) > 1 and np.all(ids[1:] > ids[:-1]):  # as the database gives them: no second copy
            return cls(np.asarray(ids, dtype=np.int64), np.ascontiguousarray(vectors, dtype=np.float32))
        order = np.argsort(ids, kind="stable")
        return cls(np.ascontiguousarray(ids[order], dtype=np.int64),
                   np.ascontiguousarray(vectors[order], dtype=np.float32))

    def rerank(self, query: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``candidates`` (ids, -1 = none) for ``query`` ``[D]``, with exact scores."""
        found = candidates[candidates >= 0]
        rows = np.searchsorted(self.ids, found)
        scores = np.asarray(self.vectors[rows]) @ query
        best = np.argsort(-scores, kind="stable")[:k]
        padded_scores = np.full(k, -np.inf, dtype=np.float32)
        padded_ids = np.full(k, -1, dtype=np.int64)
        padded_scores[:len(best)], padded_ids[:len(best)] = scores[best], found[best]
        return padded_scores, padded_ids


@dataclass
class VectorIndex:
    index: object  # a faiss IndexIDMap2 (flat) or IndexIVFScalarQuantizer
    dimension: int
    exact: ExactVectors | None = None  # set for the compressed index

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dimension: int | None = None, *,
              exact_limit: int = EXACT_LIMIT) -> VectorIndex:
        faiss = _faiss()
        dimension = dimension or (vectors.shape[1] if vectors.size else 0)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(ids) > exact_limit:
            lists = int(math.sqrt(len(ids)))
            quantiser = faiss.IndexFlatIP(dimension)
            index = faiss.IndexIVFScalarQuantizer(quantiser, dimension, lists, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * lists),
                                                              replace=False)]
            index.train(sample)
            index.nprobe = PROBED_LISTS
            index.add_with_ids(vectors, ids.astype(np.int64))
            return cls(index, dimension, ExactVectors.of(ids, vectors))
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(max(dimension, 1)))
        if len(ids):
            index.add_with_ids(vectors, ids.astype(np.int64))
        return cls(index, dimension)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int, allowed: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids ``[Q, k]``, best first; missing results have id -1. ``allowed`` limits the ids."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        if self.exact is None:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            return self.index.search(queries, k, params=params)
        params = faiss.SearchParametersIVF(sel=selector, nprobe=PROBED_LISTS) if selector is not None else None
        _, candidates = self.index.search(queries, min(self.size, RERANKED * k), params=params)
        ranked = [self.exact.rerank(query, row, k) for query, row in zip(queries, candidates, strict=True)]
        return np.stack([scores for scores, _ in ranked]), np.stack([ids for _, ids in ranked])

    def save(self, path: Path, fingerprint: tuple[int, int, int]) -> None:
        """Write the index, then (for a compressed one) its exact vectors, then the fingerprint last.

        The exact vectors go to files named after the fingerprint, never over
        files an earlier index may still have memory-mapped (Windows forbids that).
        """
        faiss = _faiss()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, faiss.serialize_index(self.index).tobytes())
        stem = f"{path.stem}.{'-'.join(str(part) for part in fingerprint)}"
        if self.exact is not None:
            for kind, array in (("ids", self.exact.ids), ("vectors", self.exact.vectors)):
                with (path.parent / f"{stem}.{kind}.npy").open("wb") as stream:
                    np.save(stream, array, allow_pickle=False)
        write_atomically(path.with_suffix(".json"), json.dumps(
            {"fingerprint": list(fingerprint), "dimension": self.dimension, "format": FORMAT,
             "exact": stem if self.exact is not None else None}).encode("utf-8"))
        for stale in path.parent.glob(f"{path.stem}.*.npy"):
            if not stale.name.startswith(f"{stem}."):
                with contextlib.suppress(OSError):  # still mapped by a search in progress (Windows): next time
                    stale.unlink()

    @classmethod
    def load(cls, path: Path, fingerprint: tuple[int, int, int]) -> VectorIndex | None:
        """The saved index if it was built from exactly these rows, else ``None``."""
        faiss = _faiss()
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            if tuple(meta["fingerprint"]) != fingerprint or meta.get("format") != FORMAT:
                return None
            index = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
            exact = None
            if meta["exact"]:
                stem = path.parent / str(meta["exact"])
                exact = ExactVectors(np.load(f"{stem}.ids.npy", allow_pickle=False),
                                     np.load(f"{stem}.vectors.npy", mmap_mode="r", allow_pickle=False))
                if len(exact.ids) != index.ntotal or exact.vectors.shape != (index.ntotal, meta["dimension"]):
                    return None
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = PROBED_LISTS
        return cls(index, int(meta["dimension"]), exact)


def index_path(project: Project, model_id: str) -> Path:
    return project.folder / "cache" / "search" / f"{model_id}.faiss"


_opened: dict[Path, tuple[tuple[int, int, int], VectorIndex]] = {}  # most recently used last
_opened_lock = threading.Lock()
KEPT_OPEN = 2  # indexes kept in memory (e.g. two models of one project)


def open_index(project: Project, model_id: str) -> VectorIndex:
    """The model's index, consistent with the database (kept in memory, loaded, or rebuilt and saved).

    Searches run on worker threads; FAISS allows concurrent searches of one index, and an index is
    never changed once built (a change in the database builds a new one).
    """
    fingerprint = vector_fingerprint(project, model_id)
    path = index_path(project, model_id)
    with _opened_lock:
        cached = _opened.pop(path, None)
        if cached is not None and cached[0] == fingerprint:
            _opened[path] = cached
            return cached[1]
        index = VectorIndex.load(path, fingerprint)
        if index is None:
            ids, vectors = load_vectors(project, model_id)
            index = VectorIndex.build(ids, vectors)
            index.save(path, fingerprint)
        _opened[path] = (fingerprint, index)
        while len(_opened) > KEPT_OPEN:
            del _opened[next(iter(_opened))]
        return index
