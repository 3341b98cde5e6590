"""The FAISS index over a model's vectors, derived from the database and kept up to date with it.

Inner product on unit vectors is the cosine similarity. Up to ``EXACT_LIMIT``
vectors the index is exact (a flat scan: scores equal a direct matrix product).
Beyond, every vector is scanned in a 4-bit product-quantised code (two
dimensions per code, FAISS's fast-scan kernels: 128 bytes per 512-d vector,
a million in 128 MB), and the best ``CANDIDATES`` × k are re-scored with their
exact vectors read from the database, so the scores shown are always exact.
Measured on this project's 2-core machine at 1,000,000 clustered vectors:
recall@100 0.99–1.0 against an exact scan at p50 ≈ 7 ms (``bench/clip_search.py``).
Partitioned indexes (IVF, HNSW) were measured too and missed a fifth to a third
of the top 100 at the same speed: the lower part of a top 100 is spread over
the whole collection, so only a full scan finds it.

The index follows the database incrementally: vectors added or removed since it
was saved are added to or removed from it (ids are never reused, see the
``vector`` table), and it is rebuilt only when most of it changed, when it
crosses ``EXACT_LIMIT``, or when its file is missing or damaged.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.fileio import write_atomically
from engine.project import Project
from engine.retrieval.vectors import load_vectors, vector_fingerprint, vector_ids_of_model, vectors_by_id

EXACT_LIMIT = 200_000
CANDIDATES = 20  # per wanted result, from the codes, re-scored exactly
SMALL_SUBSET = 20_000  # a restriction to this many vectors or fewer is scored exactly, without the codes
REBUILD_SHARE = 0.5  # more changes than this share of the index: build it anew
TRAINING_SAMPLE = 65_536
FORMAT = 3  # of the saved files; older ones are rebuilt

Fetch = Callable[[np.ndarray], np.ndarray]  # ids [n] → their exact vectors [n, D] float32, in that order


def _faiss():  # noqa: ANN202 - imported when search is first used
    import faiss

    return faiss


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


@dataclass
class VectorIndex:
    index: Any  # a faiss IndexIDMap2 over IndexFlatIP (exact) or IndexPQFastScan (compressed)
    dimension: int
    fetch: Fetch | None = None  # exact vectors, for re-ranking the compressed index's candidates
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dimension: int | None = None, *,
              exact_limit: int = EXACT_LIMIT, fetch: Fetch | None = None) -> VectorIndex:
        faiss = _faiss()
        dimension = dimension or (vectors.shape[1] if vectors.size else 0)
        vectors = _unit_rows(vectors)
        if len(ids) > exact_limit and dimension % 2 == 0:
            inner = faiss.IndexPQFastScan(dimension, dimension // 2, 4, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), TRAINING_SAMPLE), replace=False))]
            inner.train(sample)
            if fetch is None:
                fetch = _fetch_from(ids, vectors)
        else:
            inner = faiss.IndexFlatIP(max(dimension, 1))
        index = faiss.IndexIDMap2(inner)
        if len(ids):
            index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        return cls(index, dimension, fetch)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def compressed(self) -> bool:
        return not isinstance(_faiss().downcast_index(self.index.index), _faiss().IndexFlat)

    def ids(self) -> np.ndarray:
        """Every id in the index, sorted."""
        return np.sort(_faiss().vector_to_array(self.index.id_map).astype(np.int64))

    # -- changes --------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            with self._lock:
                self.index.add_with_ids(_unit_rows(vectors), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        with self._lock:
            return int(self.index.remove_ids(_faiss().IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def follow(self, wanted: np.ndarray, fetch: Fetch, *, exact_limit: int = EXACT_LIMIT) -> bool:
        """Add and remove vectors so that the index holds exactly the ids ``wanted``; ``False`` (nothing
        changed) when building anew is the better way: most of it changed, or it crosses ``exact_limit``."""
        held = self.ids()
        added = np.setdiff1d(wanted, held, assume_unique=True)
        removed = np.setdiff1d(held, wanted, assume_unique=True)
        if len(added) + len(removed) > REBUILD_SHARE * max(len(held), 1):
            return False
        if (len(wanted) > exact_limit and self.dimension % 2 == 0) != self.compressed:
            return False  # it should be the other kind now
        self.remove(removed)
        if len(added):
            vectors = fetch(added)
            if vectors.shape[1:] != (self.dimension,):
                return False
            self.add(added, vectors)
        return True

    # -- searching ------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, allowed: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids ``[Q, k]``, best first; missing results have id -1. ``allowed`` limits the ids."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        allowed_ids = np.unique(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        if not self.compressed:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed_ids)) if allowed_ids is not None \
                else None
            with self._lock:
                return self.index.search(queries, k, params=params)
        assert self.fetch is not None, "a compressed index re-ranks with exact vectors"
        if allowed_ids is not None and len(allowed_ids) <= SMALL_SUBSET:
            exact = self.fetch(allowed_ids) if len(allowed_ids) else np.zeros((0, self.dimension), np.float32)
            ranked = [_best(query, allowed_ids, exact @ query, k) for query in queries]
        else:
            # The share of the index allowed thins the candidates: ask for that many more.
            share = 1.0 if allowed_ids is None else max(len(allowed_ids) / self.size, 1e-6)
            wanted = min(self.size, int(np.ceil(CANDIDATES * k / share)))
            with self._lock:
                _, candidates = self.index.search(queries, wanted)
            ranked = []
            for query, row in zip(queries, candidates, strict=True):
                row = row[row >= 0]
                if allowed_ids is not None:
                    row = row[np.isin(row, allowed_ids)]
                ranked.append(_best(query, row, self.fetch(row) @ query if len(row) else np.zeros(0), k))
        return np.stack([scores for scores, _ in ranked]), np.stack([ids for _, ids in ranked])

    # -- files ----------------------------------------------------------------------------

    def save(self, path: Path, fingerprint: tuple[int, int, int]) -> None:
        """Write the index, then its fingerprint (the database state it equals) last."""
        faiss = _faiss()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self.index).tobytes()
        write_atomically(path, data)
        write_atomically(path.with_suffix(".json"), json.dumps(
            {"fingerprint": list(fingerprint), "dimension": self.dimension, "format": FORMAT}).encode("utf-8"))
        for stale in path.parent.glob(f"{path.stem}.*.npy"):  # exact vectors kept by earlier versions
            with contextlib.suppress(OSError):
                stale.unlink()

    @classmethod
    def load(cls, path: Path, fetch: Fetch | None = None) -> tuple[VectorIndex, tuple[int, int, int]] | None:
        """The saved index and the fingerprint it was saved with, or ``None`` (absent, damaged, older format)."""
        faiss = _faiss()
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                return None
            index = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
            fingerprint = tuple(int(part) for part in meta["fingerprint"])
            dimension = int(meta["dimension"])
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None
        if not isinstance(index, faiss.IndexIDMap2) or index.d != max(dimension, 1):
            return None
        return cls(index, dimension, fetch), fingerprint  # type: ignore[return-value]


def _best(query: np.ndarray, ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` (padded with -1 / -inf), best first."""
    best = np.argsort(-scores, kind="stable")[:k]
    padded_scores = np.full(k, -np.inf, dtype=np.float32)
    padded_ids = np.full(k, -1, dtype=np.int64)
    padded_scores[:len(best)], padded_ids[:len(best)] = scores[best], ids[best]
    return padded_scores, padded_ids


def _fetch_from(ids: np.ndarray, vectors: np.ndarray) -> Fetch:
    """Exact vectors from arrays in memory (benchmarks, tests); the product reads them from the database."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = np.asarray(ids, dtype=np.int64)[order]

    def fetch(wanted: np.ndarray) -> np.ndarray:
        return vectors[order[np.searchsorted(sorted_ids, wanted)]]

    return fetch


def index_path(project: Project, model_id: str) -> Path:
    return project.folder / "cache" / "search" / f"{model_id}.faiss"


_opened: dict[Path, tuple[VectorIndex, tuple[int, int, int]]] = {}  # most recently used last
_opened_lock = threading.Lock()
KEPT_OPEN = 2  # indexes kept in memory (e.g. two models of one project)


def open_index(project: Project, model_id: str) -> VectorIndex:
    """The model's index, equal to the database: kept in memory or loaded, brought up to date incrementally,
    or built anew; saved when it changed. Searches and updates of one index take turns (its lock)."""
    fingerprint = vector_fingerprint(project, model_id)
    path = index_path(project, model_id)

    def fetch(ids: np.ndarray) -> np.ndarray:
        return vectors_by_id(project, ids)

    with _opened_lock:
        held = _opened.pop(path, None) or VectorIndex.load(path, fetch)
        index: VectorIndex | None = None
        if held is not None:
            index, saved = held
            index.fetch = fetch
            if saved != fingerprint:
                if index.follow(vector_ids_of_model(project, model_id), fetch):
                    index.save(path, fingerprint)
                else:
                    index = None
        if index is None:
            ids, vectors = load_vectors(project, model_id)
            index = VectorIndex.build(ids, vectors, fetch=fetch)
            index.save(path, fingerprint)
        _opened[path] = (index, fingerprint)
        while len(_opened) > KEPT_OPEN:
            del _opened[next(iter(_opened))]
        return index
