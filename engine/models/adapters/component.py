"""Catalogue entries that are parts of another model (a tokenizer, a configuration), never run alone."""

from __future__ import annotations

from engine.errors import MarginaliaError
from engine.models.adapters import ModelFiles


def load(files: ModelFiles, device: str) -> None:
    raise MarginaliaError(f"{files.spec.name} is a part of another model and is not used by itself.")
