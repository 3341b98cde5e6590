"""Model adapters: one module per model family, named by the catalogue's ``adapter`` field.

Each adapter module provides ``load(installed, device) -> (model, size_bytes)``
(see :class:`Adapter`); the runtime finds it through the catalogue, never
through a chain of conditions on model names. Tensor shapes are documented in
each adapter.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from engine.errors import MarginaliaError
from engine.models.catalogue import ModelSpec
from engine.models.store import InstalledModel


class Adapter(Protocol):
    def load(self, installed: InstalledModel, device: str) -> tuple[Any, int]: ...


def adapter_for(spec: ModelSpec) -> Adapter:
    try:
        module = importlib.import_module(spec.adapter)
    except ModuleNotFoundError as error:
        if error.name != spec.adapter:
            raise  # a missing dependency inside an existing adapter is a real fault
        raise MarginaliaError(f"{spec.name} can be downloaded, but this version of Marginalia cannot run it "
                              "yet.") from error
    if not callable(getattr(module, "load", None)):
        raise MarginaliaError(f"The adapter {spec.adapter} has no load function.")
    return module  # type: ignore[return-value]
