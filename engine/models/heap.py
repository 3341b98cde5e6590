"""The C heap under CPU inference: memory of freed tensors kept for the next ones, given back after a job.

A model on the CPU allocates and frees tensors of tens of megabytes many times a second. glibc's ``malloc``
hands such blocks back to the system when they are freed (``mmap`` above an adaptive threshold, the top of the
heap trimmed above another), so the next tensor of that size is faulted in again page by page, zeroed by the
kernel: on the 2-core bench machine a tenth of Hi-SAM's CPU time went to the system that way (``bench/hisam.py``,
both passes: 42 s of system time, 27–29 s with the heap kept). While models run here the heap keeps what it frees
(``keep_freed_memory``); when a job ends, or a model is unloaded, what is free goes back (``give_back_freed_memory``)
so an idle Marginalia does not sit on gigabytes.

Only glibc (Linux) is tuned; elsewhere both do nothing and say so (``False``).
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 * 1024**2  # the largest glibc takes: blocks up to it come from the heap, reused
TRIM_THRESHOLD = 2**31 - 1  # free memory at the heap's top kept up to this (mallopt takes an int)
TOP_PAD = 256 * 1024**2  # grow the heap by this much at a time, not page by page


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    needed = ("gnu_get_libc_version", "mallopt", "malloc_trim")  # the first only glibc has (not musl)
    return libc if all(hasattr(libc, name) for name in needed) else None


@functools.cache  # once per process (setting the same values again would change nothing)
def keep_freed_memory() -> bool:
    """Keep freed blocks in the heap for reuse; whether the heap is now tuned so."""
    libc = _glibc()
    return libc is not None and all(libc.mallopt(parameter, value) == 1 for parameter, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))


def give_back_freed_memory() -> bool:
    """Return the heap's free memory to the system; whether any was returned."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
