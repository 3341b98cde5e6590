"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from engine.errors import MarginaliaError
from engine.paths import displayable

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


class InputFileError(MarginaliaError):
    """A file given to read that is not a plain file, or is larger than such a file can be."""


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.0f} MB" if size >= 10_000_000 else f"{size / 1_000_000:.1f} MB"


def require_plain_file(path: Path, limit: int, what: str) -> int:
    """The size of ``path`` if it is a plain file no larger than ``limit`` bytes, else a plain refusal. A pipe
    or a device is refused at once: reading one waits for a writer for ever, or never ends (``/dev/zero``)."""
    try:
        found = os.stat(path)
    except FileNotFoundError as error:
        raise InputFileError(f"There is no file {displayable(path)}.") from error
    except OSError as error:
        raise InputFileError(f"{displayable(path)} cannot be read: {_os_reason(error)}.") from error
    _check_plain(path, found, limit, what)
    return found.st_size


def read_plain_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a plain file of at most ``limit`` bytes (see :func:`require_plain_file`)."""
    require_plain_file(path, limit, what)
    try:  # non-blocking: a pipe put there since the check cannot make the open wait
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise InputFileError(f"{displayable(path)} cannot be read: {_os_reason(error)}.") from error
    with os.fdopen(handle, "rb") as stream:
        _check_plain(path, os.fstat(stream.fileno()), limit, what)
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputFileError(f"{displayable(path)} is larger than {_megabytes(limit)}, more than {what} can be.")
    return data


def _check_plain(path: Path, found: os.stat_result, limit: int, what: str) -> None:
    if stat.S_ISDIR(found.st_mode):
        raise InputFileError(f"{displayable(path)} is a folder, not {what}.")
    if not stat.S_ISREG(found.st_mode):
        kind = "a pipe" if stat.S_ISFIFO(found.st_mode) else "a socket" if stat.S_ISSOCK(found.st_mode) else "a device"
        raise InputFileError(f"{displayable(path)} is {kind}, not a file; only files are read.")
    if found.st_size > limit:
        raise InputFileError(f"{displayable(path)} is {_megabytes(found.st_size)}, more than {what} can be "
                             f"({_megabytes(limit)} at most).")


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "it is a link that leads back to itself"
    return error.strerror or str(error)
