"""Which floating-point precision a model family computes in, on this device and this processor.

* GPUs: bfloat16 where the card has it, else float16 (under autocast).
* Apple silicon (MPS): float16.
* CPUs: bfloat16 autocast only where the processor has bfloat16 instructions
  (``avx512_bf16`` / AMX on x86) *and* the family's adapter declares that it is
  both faster and faithful there (measured, see ``HALF_ON_CPU`` in each adapter);
  elsewhere float32. Emulated bfloat16 on a processor without the instructions is
  slower than float32, so it is never chosen automatically.

The curator's setting (``automatic`` or ``float32``; ``MARGINALIA_PRECISION`` wins)
is process-wide, like the thread count: models loaded after a change use it.
``MARGINALIA_CPU_BF16=0|1`` overrides the processor check (support, tests).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

AUTOMATIC, FLOAT32 = "automatic", "float32"
POLICIES = (AUTOMATIC, FLOAT32)

_policy = AUTOMATIC
_lock = threading.Lock()


def set_policy(policy: str) -> None:
    """The app's setting: ``automatic`` (half precision where fast and faithful) or ``float32``."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown precision setting {policy!r}: use {' or '.join(POLICIES)}.")
    global _policy
    with _lock:
        _policy = policy


def policy() -> str:
    wish = os.environ.get("MARGINALIA_PRECISION", "").strip().lower()
    if wish in ("fp32", "float32", "full"):
        return FLOAT32
    if wish in ("auto", "automatic"):
        return AUTOMATIC
    return _policy


@functools.cache
def _processor_has_bf16() -> bool:
    import torch

    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and bool(check()) for check in checks)


def cpu_has_bf16() -> bool:
    """Whether this processor computes bfloat16 natively (the override first)."""
    forced = os.environ.get("MARGINALIA_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _processor_has_bf16()


def compute_dtype(device: str, *, half_on_cpu: bool = False, gpu_bf16: bool = True) -> Any:
    """The dtype to run a family's heavy part in on ``device`` (``torch.float32`` = no autocast)."""
    import torch

    if policy() == FLOAT32:
        return torch.float32
    if device.startswith("cuda"):
        return torch.bfloat16 if gpu_bf16 and torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if half_on_cpu and cpu_has_bf16() else torch.float32


def autocast(device: str, dtype: Any) -> Any:
    """An autocast context for ``dtype`` on ``device``, or a no-op for float32."""
    import contextlib

    import torch

    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=dtype)


def tag(dtype: Any) -> str:
    """A short name for cache keys and provenance: ``fp32``, ``bf16``, ``fp16``."""
    return {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(str(dtype), str(dtype))


def describe() -> str:
    """One line for the Models dialog and ``models list``: what automatic means on this computer."""
    if policy() == FLOAT32:
        return "Always full precision (float32)."
    if cpu_has_bf16():
        return "This processor has bfloat16 instructions: models that stay faithful in half precision use them."
    return "This processor has no bfloat16 instructions: the CPU computes in float32."
