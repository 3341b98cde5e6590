"""Attention maps kept on disk per page, model, weights and resolution (float16, bounded in size).

``PROJECT/cache/attention/<key>.npz``. A map is small (heads × 112 × ~80 values), but a collection has
thousands of pages: past the budget, the least recently used entries go. A damaged entry is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from engine.attention.maps import AttentionMap
from engine.fileio import write_atomically

FORMAT = 1
DEFAULT_BUDGET = 512 * 1024**2


def attention_key(sha256: str, page_index: int, model_id: str, checkpoint: str, patches: int) -> str:
    described = json.dumps([FORMAT, sha256, page_index, model_id, checkpoint, patches])
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:32]


class AttentionCache:
    def __init__(self, folder: Path, budget_bytes: int = DEFAULT_BUDGET) -> None:
        self.folder, self.budget = folder, budget_bytes

    @classmethod
    def of_project(cls, project_folder: Path) -> AttentionCache:
        return cls(project_folder / "cache" / "attention")

    def get(self, key: str) -> AttentionMap | None:
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                found = AttentionMap(data["heads"].astype(np.float32), int(data["size"][0]), int(data["size"][1]),
                                     data["pca"].astype(np.float32) if "pca" in data else None)
            os.utime(path)  # recently used
            return found
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, attention: AttentionMap) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = {"heads": attention.heads.astype(np.float16),
                  "size": np.array([attention.page_width, attention.page_height])}
        if attention.pca is not None:
            arrays["pca"] = attention.pca.astype(np.float16)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomically(self.folder / f"{key}.npz", buffer.getvalue())
        self._trim()

    def _trim(self) -> None:
        entries = sorted(((path.stat().st_mtime, path.stat().st_size, path) for path in self.folder.glob("*.npz")),
                         key=lambda entry: entry[0])
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.budget:
                break
            path.unlink(missing_ok=True)
            total -= size
