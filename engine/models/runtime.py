"""Where and how models run: device choice, a memory budget, thread confinement, OOM fallback.

* Device: ``MARGINALIA_DEVICE`` (or the app's setting) wins; otherwise CUDA,
  then Apple's MPS, then the CPU. A device asked for but absent falls back to
  the CPU with a notice rather than an error.
* Lifetime: models load on first use and are kept within a memory budget,
  least recently used first out; ``unload`` frees one at once.
* Threads: every loaded model lives on its own inference thread; callers hand
  it work through :meth:`ModelManager.run`, never touch it directly.
* Sharing the computer: an app with a window (``yield_to_ui``) leaves one core to
  it where there are four or more, and runs model threads at a lower priority, so
  that the window stays responsive while pages are encoded.
* Garbage collection: in an app with a window, what a model load leaves (the model, torch, transformers:
  some 400,000 objects) is moved out of the collector's reach, because one full collection over them held
  the interpreter for 235 ms (measured, 2-core machine) and froze the window mid-task. An unload hands
  them back, so that the model's memory is still reclaimed.
* The C heap: once a model runs on the CPU, freed tensors' memory is kept for the next ones (glibc; see
  ``engine.models.heap``) and given back to the system when a model is unloaded or a batch job ends.
* Out of memory on a GPU: the batch is halved and retried, down to one item,
  then the model moves to the CPU and the caller gets a notice — never a crash.

torch is imported only when a model is first used, so the app starts fast.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.cores import usable_cores
from engine.errors import MarginaliaError
from engine.models.heap import give_back_freed_memory, keep_freed_memory

T = TypeVar("T")
DEFAULT_BUDGET_BYTES = 6 * 1024**3


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    device: str  # "cuda", "cuda:1", "mps" or "cpu"
    notice: str = ""  # set when the wish could not be met


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(preference: str | None = None) -> DeviceChoice:
    """The device to run on: an explicit wish (env first), else CUDA > MPS > CPU."""
    wish = (os.environ.get("MARGINALIA_DEVICE") or preference or "auto").strip().lower()
    if wish in ("", "auto"):
        if _cuda_available():
            return DeviceChoice("cuda")
        return DeviceChoice("mps" if _mps_available() else "cpu")
    if wish == "cpu":
        return DeviceChoice("cpu")
    if wish.startswith("cuda"):
        if _cuda_available():
            import torch

            index = int(wish.split(":")[1]) if ":" in wish else 0
            if index < torch.cuda.device_count():
                return DeviceChoice(wish)
        return DeviceChoice("cpu", f"The GPU '{wish}' is not available here; running on the CPU.")
    if wish == "mps":
        return DeviceChoice("mps") if _mps_available() else DeviceChoice(
            "cpu", "Apple GPU (MPS) is not available here; running on the CPU.")
    raise MarginaliaError(f"Unknown device '{wish}': use auto, cpu, cuda, cuda:N or mps.")


def likely_gpu(preference: str = "auto") -> bool:
    """Whether models will probably run on a GPU, without importing torch (for suggestions only):
    an NVIDIA driver, or Apple silicon."""
    import platform
    import shutil
    import sys

    wish = (os.environ.get("MARGINALIA_DEVICE") or preference or "auto").strip().lower()
    if wish == "cpu":
        return False
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def available_devices() -> list[str]:
    """The devices this computer can run models on, fastest first (imports torch: call off the UI thread)."""
    found = []
    if _cuda_available():
        import torch

        found += [f"cuda:{index} {torch.cuda.get_device_name(index)}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def half_precision_for(device: str, supports_bf16: bool = True, *, half_on_cpu: bool = False) -> Any:
    """fp16/bf16 on GPUs; on the CPU bf16 only for families that declare it fast and faithful there, and only
    where the processor has the instructions (see :mod:`engine.models.precision`), else float32."""
    from engine.models.precision import compute_dtype

    return compute_dtype(device, half_on_cpu=half_on_cpu, gpu_bf16=supports_bf16)


def weight_and_compute_dtypes(device: str, *, half_on_cpu: bool = False) -> tuple[Any, Any]:
    """(weights, autocast) dtypes: GPUs hold half-precision weights; a CPU keeps float32 weights and computes
    the heavy products in bf16 under autocast (layer norms and softmax stay float32: more faithful)."""
    import torch

    dtype = half_precision_for(device, half_on_cpu=half_on_cpu)
    if device.startswith(("cuda", "mps")):
        return dtype, torch.float32
    return torch.float32, dtype


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


@dataclass
class LoadedModel:
    """A model held by the manager. ``value`` is whatever the adapter's loader returned."""

    model_id: str
    value: Any
    device: str
    size_bytes: int
    thread: ThreadPoolExecutor
    last_used: float = field(default_factory=time.monotonic)


Loader = Callable[[str], tuple[Any, int]]  # device -> (model, size in bytes)
Mover = Callable[[Any, str], Any]  # (model, device) -> model on that device


class ModelManager:
    """Loads models lazily, keeps them within a memory budget, runs work on their threads."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES, device: DeviceChoice | None = None,
                 preference: str | None = None, *, yield_to_ui: bool = False) -> None:
        self.budget_bytes = budget_bytes
        self.yield_to_ui = yield_to_ui
        self._device = device
        self._preference = preference  # the app's setting; MARGINALIA_DEVICE still wins
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.RLock()
        self.notices: list[str] = []

    @property
    def device(self) -> DeviceChoice:
        if self._device is None:
            self._device = choose_device(self._preference)
            if self._device.notice:
                self.notices.append(self._device.notice)
        return self._device

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def held(self, model_id: str) -> LoadedModel | None:
        """The loaded model, or ``None``; loads nothing."""
        with self._lock:
            return self._models.get(model_id)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(model.size_bytes for model in self._models.values())

    def get(self, model_id: str, loader: Loader) -> LoadedModel:
        """The loaded model, loading it (on its own thread) if needed."""
        with self._lock:
            held = self._models.get(model_id)
            if held is not None:
                self._models.move_to_end(model_id)
                held.last_used = time.monotonic()
                return held
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{model_id}",
                                        initializer=_yield_to_ui if self.yield_to_ui else None)
            device = self.device.device
            if device == "cpu":
                keep_freed_memory()  # tensors' memory reused, not faulted in again (engine.models.heap)
            try:
                value, size = thread.submit(loader, device).result()
            except BaseException:
                thread.shutdown(wait=False)
                raise
            held = LoadedModel(model_id, value, device, size, thread)
            self._models[model_id] = held
            self._evict_beyond_budget(keep=model_id)
            if self.yield_to_ui:
                gc.freeze()
            return held

    def _evict_beyond_budget(self, keep: str) -> None:
        while self.used_bytes() > self.budget_bytes and len(self._models) > 1:
            oldest = next(model_id for model_id in self._models if model_id != keep)
            self.unload(oldest)

    def unload(self, model_id: str) -> None:
        with self._lock:
            held = self._models.pop(model_id, None)
        if held is None:
            return
        held.thread.submit(_release, held).result()
        held.thread.shutdown(wait=True)
        give_back_freed_memory()
        if self.yield_to_ui:
            gc.unfreeze()  # the model's reference cycles become collectable again; the next load refreezes

    def unload_all(self) -> None:
        for model_id in self.loaded():
            self.unload(model_id)

    def run(self, model_id: str, loader: Loader, work: Callable[[Any], T]) -> T:
        """Run ``work(model)`` on the model's own thread and return its result."""
        held = self.get(model_id, loader)
        return held.thread.submit(work, held.value).result()

    def run_batches(
        self,
        model_id: str,
        loader: Loader,
        items: Sequence[Any],
        work: Callable[[Any, Sequence[Any]], list[T]],
        *,
        batch_size: int,
        mover: Mover,
    ) -> list[T]:
        """Run ``work(model, batch)`` over ``items``; on out-of-memory shrink batches, then use the CPU."""
        results: list[T] = []
        start = 0
        while start < len(items):
            held = self.get(model_id, loader)
            batch = items[start : start + batch_size]
            try:
                results.extend(held.thread.submit(work, held.value, batch).result())
                start += len(batch)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                _empty_gpu_cache()
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                elif held.device != "cpu":
                    self._move_to_cpu(held, mover)
                else:
                    raise MarginaliaError("Not enough memory even on the CPU for this model.") from error
        return results

    def _move_to_cpu(self, held: LoadedModel, mover: Mover) -> None:
        held.value = held.thread.submit(mover, held.value, "cpu").result()
        held.device = "cpu"
        _empty_gpu_cache()
        self.notices.append(f"The GPU ran out of memory for {held.model_id}; it now runs on the CPU "
                            "(slower, but it will finish).")


def cpu_threads_beside_a_window(cores: int | None = None) -> int:
    """Threads for model work when a window shares the computer: one core left to it from four cores up
    (on two cores, halving the model's speed would cost more than the window gains)."""
    cores = cores or usable_cores()
    return cores - 1 if cores >= 4 else cores


def _yield_to_ui() -> None:
    """On a model thread: fewer compute threads and a lower priority, so the window is served first.
    The priority is lowered for this thread (Linux: per-thread niceness; Windows: below normal), and the
    compute threads it starts inherit it; elsewhere the thread cap alone applies."""
    import sys

    import torch

    threads = cpu_threads_beside_a_window()
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)
    try:
        if sys.platform.startswith("linux"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
        elif sys.platform == "win32":
            import ctypes

            kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel.SetThreadPriority(kernel.GetCurrentThread(), -1)  # THREAD_PRIORITY_BELOW_NORMAL
    except (OSError, AttributeError):
        pass  # not permitted here: the thread cap still applies


def _release(held: LoadedModel) -> None:
    held.value = None
    _empty_gpu_cache()


def _empty_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
