"""Model adapters: one module per model family, named by the catalogue's ``adapter`` field.

Each adapter module provides ``load(files, device) -> Network`` (see :class:`Adapter`):
it builds the family's real architecture from the installed files, loads the
weights without unpickling code, and returns a small object that owns the
torch modules and documents its tensor shapes. It may also provide
``probe(network) -> str``: one run on a blank input, for ``marginalia models check``.
The runtime finds the module through the catalogue, never through a chain of
conditions on model names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import MarginaliaError
from engine.models.catalogue import ModelSpec
from engine.models.store import InstalledModel, ModelStore


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """An installed model and the installed models it requires (e.g. a tokenizer)."""

    spec: ModelSpec
    installed: InstalledModel
    requirements: dict[str, InstalledModel] = field(default_factory=dict)

    def path(self, filename: str) -> Path:
        return self.installed.path(filename)

    def has(self, filename: str) -> bool:
        return filename in self.installed.files and self.path(filename).is_file()

    def checksum(self, filename: str) -> str:
        return str(self.installed.files[filename]["sha256"])


class Network(Protocol):
    """What an adapter returns: the model's modules on one device, and what they weigh."""

    device: str
    size_bytes: int

    def to(self, device: str) -> Network: ...


class Adapter(Protocol):
    def load(self, files: ModelFiles, device: str) -> Network: ...


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


def model_files(store: ModelStore, spec: ModelSpec) -> ModelFiles:
    """The installed files of ``spec`` and of everything it requires; a clear error when any is missing."""
    installed = store.require(spec.id)
    requirements = {required: store.require(required) for required in spec.requires}
    return ModelFiles(spec, installed, requirements)
