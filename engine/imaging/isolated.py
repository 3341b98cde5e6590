"""Work that must not hold the interpreter lock: decoding in worker processes.

Some decoders keep Python's GIL for their whole run (OpenJPEG for JPEG 2000
holds it for the full decode; raw, BMP, WebP and LZW TIFF hold it in long
stretches). A thread running them freezes every other thread, the GUI's
included. Worker processes do not: they have interpreters of their own.

Pools start with "spawn" (a process forked from a multithreaded GUI is
unsafe) and fall back to threads where processes cannot be started.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

from PIL import Image

from engine.cores import usable_cores
from engine.imaging.decode import load_page

log = logging.getLogger(__name__)
_START_TIMEOUT_S = 60

_shared_pool: Executor | None = None
_shared_lock = threading.Lock()


def _alive() -> int:
    return os.getpid()


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: a worker must never outlive the app (even one that was killed).

    ``parent`` comes from the app itself: if it died while this worker was
    still starting, the worker notices at once instead of adopting its new parent.
    """
    # Not prctl(PR_SET_PDEATHSIG): it fires when the *thread* that started the
    # worker ends, and pools are often started from short-lived job threads.
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()



def start_pool(workers: int) -> Executor:
    """A started process pool, or a thread pool where processes are not available."""
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_exit_with_parent, initargs=(os.getpid(),))
        pool.submit(_alive).result(timeout=_START_TIMEOUT_S)
        return pool
    except (OSError, BrokenProcessPool, TimeoutError, RuntimeError) as error:
        log.warning("worker processes unavailable (%s); decoding in threads", error)
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")


def shared_decode_pool() -> Executor:
    """The app-wide pool for decoding pages on view (started on first use)."""
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None:
            _shared_pool = start_pool(min(2, usable_cores()))
        return _shared_pool


def reset_shared_decode_pool() -> None:
    global _shared_pool
    with _shared_lock:
        _shared_pool = None


def load_page_isolated(
    path: Path, page_index: int = 0, *, max_side: int | None = None, image_format: str | None = None,
    least_side: int | None = None,
) -> Image.Image:
    """:func:`load_page`, run in a worker process; same result, same errors."""
    try:
        return shared_decode_pool().submit(
            load_page, path, page_index, max_side=max_side, image_format=image_format, least_side=least_side).result()
    except BrokenProcessPool:
        # A worker died (out of memory, killed): start afresh next time, decode here now.
        reset_shared_decode_pool()
        return load_page(path, page_index, max_side=max_side, image_format=image_format, least_side=least_side)


class SharedPage:
    """A full-resolution page decoded by a worker process into shared memory.

    ``image`` is a zero-copy view of that memory, so even a 300-megapixel page
    crosses between processes without a copy (a copy would hold the GIL for
    seconds). Call :meth:`release` when done with it.
    """

    def __init__(self, memory: shared_memory.SharedMemory, mode: str, size: tuple[int, int]) -> None:
        self._memory = memory
        self.image: Image.Image | None = Image.frombuffer(mode, size, memory.buf, "raw", mode, 0, 1)

    def release(self) -> None:
        self.image = None
        try:
            self._memory.unlink()
        except FileNotFoundError:
            pass
        _unclosed.append(self._memory)
        _close_unused_mappings()


# Mappings still viewed by an image when released; closed as soon as nothing uses them. Pages are released
# from the UI thread and from loader threads: one closing at a time, or two would close the same descriptor
# (the second closing whatever file has taken its number meanwhile).
_unclosed: list[shared_memory.SharedMemory] = []
_closing = threading.Lock()


def _close_unused_mappings() -> None:
    with _closing:
        for memory in list(_unclosed):
            try:
                memory.close()
                _unclosed.remove(memory)
            except BufferError:
                pass  # an image still looks at it; try again at the next release


atexit.register(_close_unused_mappings)


def _decode_to_shared_memory(path: Path, page_index: int, image_format: str | None) -> tuple[str, str, tuple[int, int]]:
    page = load_page(path, page_index, image_format=image_format)
    if page.mode == "RGB":
        page = page.convert("RGBX")  # four bytes a pixel: Pillow's own layout, so the view needs no copy
    data = page.tobytes()
    memory = shared_memory.SharedMemory(create=True, size=max(1, len(data)))
    memory.buf[: len(data)] = data
    # The process that asked owns the block from now on (and removes it).
    resource_tracker.unregister(memory._name, "shared_memory")  # type: ignore[attr-defined]  # noqa: SLF001
    memory.close()
    return memory.name, page.mode, page.size


def load_full_page_shared(path: Path, page_index: int = 0, *, image_format: str | None = None) -> SharedPage:
    """Decode a whole page in a worker process and map it here without copying."""
    try:
        name, mode, size = shared_decode_pool().submit(
            _decode_to_shared_memory, path, page_index, image_format).result()
    except BrokenProcessPool:
        reset_shared_decode_pool()  # a worker died (out of memory?): try once more in a fresh one
        name, mode, size = shared_decode_pool().submit(
            _decode_to_shared_memory, path, page_index, image_format).result()
    return SharedPage(shared_memory.SharedMemory(name=name), mode, size)
