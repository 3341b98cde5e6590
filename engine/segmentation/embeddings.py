"""SAM image embeddings, cached in memory (LRU) and on disk in the project, so no page is encoded twice.

A key names the page's content (sha256 + page index), the model, the exact
checkpoint (its sha256) and the precision it was encoded in: another model, a
replaced checkpoint or a change of precision never reuses an embedding. Files are safetensors (no pickles) under
``PROJECT/cache/sam-embeddings/``; the folder is bounded in bytes, least
recently used first out (a read refreshes a file's time). Embeddings are kept
as float16 — half the disk — and a fresh embedding is rounded the same way, so
a page gives the same masks whether its embedding was just computed or read back.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.fileio import write_atomically
from engine.segmentation.frame import InputFrame

DEFAULT_DISK_BYTES = 2 * 1024**3
DEFAULT_MEMORY_ITEMS = 16  # ~4 MB each for ViT-B/L/H (256 × 64 × 64 float32)
_SUFFIX = ".safetensors"


@dataclass(frozen=True, slots=True)
class EmbeddingKey:
    image_sha256: str
    page_index: int
    model_id: str
    checkpoint_sha256: str
    precision: str = "fp32"  # the encoder's compute precision: bf16 embeddings differ slightly from fp32 ones

    @property
    def filename(self) -> str:
        precision = "" if self.precision == "fp32" else f"-{self.precision}"
        return (f"{self.image_sha256}-p{self.page_index}-{self.model_id}-{self.checkpoint_sha256[:16]}{precision}"
                f"{_SUFFIX}")


@dataclass(frozen=True, slots=True)
class Embedding:
    """``features``: ``[C, 64, 64]`` float32 (C = 256), for a page in ``frame``.

    ``extras``: what else a family's decoder reads, e.g. SAM 2's high-resolution
    features ``high_res_0`` ``[32, 256, 256]`` and ``high_res_1`` ``[64, 128, 128]``.
    """

    key: EmbeddingKey
    features: np.ndarray
    frame: InputFrame
    extras: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes + sum(extra.nbytes for extra in self.extras.values()))


def as_stored(features: np.ndarray) -> np.ndarray:
    """The precision embeddings are kept in (see the module's notes)."""
    return features.astype(np.float16).astype(np.float32)


PROJECT_CACHE_FOLDER = "sam-embeddings"  # PROJECT/cache/<this>: every tool that encodes pages shares it


class EmbeddingCache:
    @classmethod
    def of_project(cls, project_folder: Path, *, disk_bytes: int = DEFAULT_DISK_BYTES) -> EmbeddingCache:
        """The project's own cache of page embeddings, shared by every tool that encodes pages."""
        return cls(project_folder / "cache" / PROJECT_CACHE_FOLDER, disk_bytes=disk_bytes)

    def __init__(self, folder: Path, *, disk_bytes: int = DEFAULT_DISK_BYTES,
                 memory_items: int = DEFAULT_MEMORY_ITEMS) -> None:
        self.folder = folder
        self.disk_bytes = disk_bytes
        self.memory_items = memory_items
        self._memory: OrderedDict[EmbeddingKey, Embedding] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EmbeddingKey) -> Embedding | None:
        with self._lock:
            held = self._memory.get(key)
            if held is not None:
                self._memory.move_to_end(key)
                return held
        embedding = self._read(key)
        if embedding is not None:
            self._remember(embedding)
        return embedding

    def __contains__(self, key: EmbeddingKey) -> bool:
        with self._lock:
            if key in self._memory:
                return True
        return (self.folder / key.filename).is_file()

    def put(self, embedding: Embedding) -> None:
        from safetensors.numpy import save

        frame = embedding.frame
        tensors = {"features": embedding.features, **embedding.extras}
        # Contiguous: safetensors writes the buffer as it lies, and a transposed view would come back scrambled.
        data = save({name: np.ascontiguousarray(array, dtype=np.float16) for name, array in tensors.items()},
                    metadata={"page_width": str(frame.page_width), "page_height": str(frame.page_height),
                              "side": str(frame.side), "stretch": "1" if frame.stretch else "0"})
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / embedding.key.filename, data)
        self._remember(embedding)
        self.evict_beyond_budget()

    def _remember(self, embedding: Embedding) -> None:
        with self._lock:
            self._memory[embedding.key] = embedding
            self._memory.move_to_end(embedding.key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def _read(self, key: EmbeddingKey) -> Embedding | None:
        from safetensors import SafetensorError, safe_open

        path = self.folder / key.filename
        try:
            with safe_open(str(path), framework="numpy") as stored:
                metadata = stored.metadata() or {}
                features = stored.get_tensor("features").astype(np.float32)
                extras = {name: stored.get_tensor(name).astype(np.float32) for name in stored.keys()
                          if name != "features"}
                frame = InputFrame(int(metadata["page_width"]), int(metadata["page_height"]), int(metadata["side"]),
                                   metadata.get("stretch") == "1")
            os.utime(path)  # recently used: evicted last
        except FileNotFoundError:
            return None
        except (SafetensorError, OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # damaged (e.g. a crash mid-write elsewhere): encode again
            return None
        return Embedding(key, features, frame, extras)

    def _files(self) -> list[tuple[float, int, Path]]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob(f"*{_SUFFIX}"):
            try:
                status = path.stat()
            except FileNotFoundError:
                continue
            found.append((status.st_mtime, status.st_size, path))
        return sorted(found)

    def disk_usage(self) -> int:
        return sum(size for _, size, _ in self._files())

    def evict_beyond_budget(self) -> int:
        """Remove the least recently used files until the folder fits its budget; returns how many."""
        files = self._files()
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, path in files:
            if total <= self.disk_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def prune(self, keep: Callable[[str], bool]) -> int:
        """Remove files whose name ``keep`` rejects (pages gone from the project, models replaced)."""
        removed = 0
        for _, _, path in self._files():
            if not keep(path.name):
                path.unlink(missing_ok=True)
                removed += 1
        with self._lock:
            for key in [key for key in self._memory if not keep(key.filename)]:
                del self._memory[key]
        return removed
