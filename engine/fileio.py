"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_HASH_CHUNK = 1 << 20


def sha256_file(path: Path, checkpoint: Callable[[], None] | None = None) -> str:
    """The file's sha256, read in chunks; ``checkpoint`` runs between chunks (e.g. to cancel)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            if checkpoint is not None:
                checkpoint()
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that ``path`` is either absent, old, or complete — never partial.

    ``durable`` also waits for the disk; caches that can be rebuilt skip it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
