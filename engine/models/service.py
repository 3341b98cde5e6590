"""The one way the app uses a model: installed files → the family's adapter → the manager.

``ModelService.run(model_id, work)`` loads the model on first use (through the
catalogue's adapter, on the manager's device), keeps it within the memory
budget, and runs ``work(network)`` on the model's own inference thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from engine.models.adapters import Network, adapter_for, model_files
from engine.models.catalogue import get_spec
from engine.models.runtime import Loader, ModelManager
from engine.models.store import ModelStore

T = TypeVar("T")


class ModelService:
    def __init__(self, store: ModelStore, manager: ModelManager) -> None:
        self.store = store
        self.manager = manager
        self._loaders: dict[str, Loader] = {}

    def loader(self, model_id: str) -> Loader:
        """Loads ``model_id`` from the store on a device; the files are looked up at each load."""
        known = self._loaders.get(model_id)
        if known is not None:
            return known
        spec = get_spec(model_id)
        adapter = adapter_for(spec)

        def load(device: str) -> tuple[Network, int]:
            network = adapter.load(model_files(self.store, spec), device)
            return network, network.size_bytes

        self._loaders[model_id] = load
        return load

    def precision_of(self, model_id: str) -> str:
        """``fp32``, ``bf16`` or ``fp16``: what the model's heavy part computes in (without loading it)."""
        from engine.models.precision import compute_dtype, tag

        held = self.manager.held(model_id)
        if held is not None:  # what the loaded network really uses, even if the setting changed since
            import torch

            reduced = [dtype for name in ("encoder_dtype", "compute_dtype", "dtype")
                       if (dtype := getattr(held.value, name, None)) is not None and dtype != torch.float32]
            return tag(reduced[0]) if reduced else "fp32"
        adapter = adapter_for(get_spec(model_id))
        return tag(compute_dtype(self.manager.device.device,
                                 half_on_cpu=bool(getattr(adapter, "HALF_ON_CPU", False))))

    def device_of(self, model_id: str) -> str:
        return self.manager.get(model_id, self.loader(model_id)).device

    def run(self, model_id: str, work: Callable[[Any], T]) -> T:
        """``work(network)`` on the model's own thread, loading the model first if needed."""
        return self.manager.run(model_id, self.loader(model_id), work)

    def run_batches(self, model_id: str, items: Sequence[Any], work: Callable[[Any, Sequence[Any]], list[T]],
                    *, batch_size: int) -> list[T]:
        """Batched work with the manager's out-of-memory fallback (smaller batches, then the CPU)."""
        return self.manager.run_batches(model_id, self.loader(model_id), items, work,
                                        batch_size=batch_size, mover=_move)

    def unload(self, model_id: str) -> None:
        self.manager.unload(model_id)


def _move(network: Network, device: str) -> Network:
    return network.to(device)


def checkpoint_of(service: ModelService, model_id: str) -> str:
    """One digest of the installed model's files: other weights give other results (and another cache)."""
    import hashlib

    installed = service.store.require(model_id)
    digest = hashlib.sha256()
    for name in sorted(installed.files):
        digest.update(f"{name}:{installed.files[name]['sha256']};".encode())
    return digest.hexdigest()
