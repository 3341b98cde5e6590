"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
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


_umask_lock = threading.Lock()
_umask: int | None = None


def process_umask() -> int:
    """The process's umask, read without leaving it changed for other threads."""
    global _umask
    with _umask_lock:
        if _umask is None:
            try:  # Linux says it outright; elsewhere the classic set-and-restore, once
                line = next(line for line in Path("/proc/self/status").read_text().splitlines()
                            if line.startswith("Umask:"))
                _umask = int(line.split()[1], 8)
            except (OSError, StopIteration, ValueError):
                _umask = os.umask(0o022)
                os.umask(_umask)
        return _umask


def new_file_mode(path: Path) -> int:
    """The mode a written file should have: an existing file's own, else what the umask gives a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~process_umask()


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that ``path`` is either absent, old, or complete — never partial.

    The file gets the permissions a plain write would give it (an existing file
    keeps its own; a new one follows the umask), not the temporary file's 0600,
    so exports on a shared drive stay readable by colleagues. ``durable`` also
    waits for the disk; caches that can be rebuilt skip it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = new_file_mode(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        os.chmod(temporary, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
