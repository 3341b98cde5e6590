"""The FAISS index over a model's vectors, derived from the database and kept consistent with it.

Inner product on unit vectors is the cosine similarity. Up to
``EXACT_LIMIT`` vectors the index is exact (a flat scan, scores equal a direct
matrix product); beyond, an inverted-file index answers in milliseconds and
still returns exact scores for what it finds. The index is saved in the
project's cache with the database fingerprint it was built from; when the
database changed behind its back (a crash mid-job, pages deleted), it is rebuilt.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.fileio import write_atomically
from engine.project import Project
from engine.retrieval.vectors import load_vectors, vector_fingerprint

EXACT_LIMIT = 200_000
PROBED_LISTS = 64


def _faiss():  # noqa: ANN202 - imported when search is first used
    import faiss

    return faiss


@dataclass
class VectorIndex:
    index: object  # a faiss IndexIDMap2 (flat) or IndexIVFFlat
    dimension: int

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dimension: int | None = None) -> VectorIndex:
        faiss = _faiss()
        dimension = dimension or (vectors.shape[1] if vectors.size else 0)
        if len(ids) > EXACT_LIMIT:
            lists = int(math.sqrt(len(ids)))
            quantiser = faiss.IndexFlatIP(dimension)
            index = faiss.IndexIVFFlat(quantiser, dimension, lists, faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * lists),
                                                              replace=False)]
            index.train(sample)
            index.nprobe = PROBED_LISTS
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(max(dimension, 1)))
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        return cls(index, dimension)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, allowed: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids ``[Q, k]``, best first; missing results have id -1. ``allowed`` limits the ids."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=PROBED_LISTS) \
                if isinstance(self.index, faiss.IndexIVF) else faiss.SearchParameters(sel=selector)
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def save(self, path: Path, fingerprint: tuple[int, int, int]) -> None:
        faiss = _faiss()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, faiss.serialize_index(self.index).tobytes())
        write_atomically(path.with_suffix(".json"), json.dumps(
            {"fingerprint": list(fingerprint), "dimension": self.dimension}).encode("utf-8"))

    @classmethod
    def load(cls, path: Path, fingerprint: tuple[int, int, int]) -> VectorIndex | None:
        """The saved index if it was built from exactly these rows, else ``None``."""
        faiss = _faiss()
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            if tuple(meta["fingerprint"]) != fingerprint:
                return None
            index = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = PROBED_LISTS
        return cls(index, int(meta["dimension"]))


def index_path(project: Project, model_id: str) -> Path:
    return project.folder / "cache" / "search" / f"{model_id}.faiss"


def open_index(project: Project, model_id: str) -> VectorIndex:
    """The model's index, consistent with the database (loaded, or rebuilt and saved)."""
    fingerprint = vector_fingerprint(project, model_id)
    path = index_path(project, model_id)
    loaded = VectorIndex.load(path, fingerprint)
    if loaded is not None:
        return loaded
    ids, vectors = load_vectors(project, model_id)
    built = VectorIndex.build(ids, vectors)
    built.save(path, fingerprint)
    return built
