"""What a weights file holds, checked by reading it safely: a size that matches proves nothing.

A file of the right size can still be a pickle padded with zeros, a web page saved under the model's name, or
a checkpoint cut short. ``safetensors`` files are opened through their header (``safe_open`` checks that
every tensor lies inside the file); PyTorch checkpoints load with ``weights_only=True`` (no code is ever
run) and must hold tensors; JSON files must parse. Nothing here executes what the file contains.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import MarginaliaError

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


class ContentError(MarginaliaError):
    """A model file is not what its name says it is."""


def describe_contents(path: Path) -> str:
    """What ``path`` holds ("a safetensors file of 120 tensors"), or :class:`ContentError` saying why it is not
    a usable weights file. Files of other kinds (tokenizer vocabularies…) are described by their size only."""
    name = path.name.lower()
    if name.endswith(".safetensors"):
        return _safetensors(path)
    if name.endswith(_CHECKPOINT_SUFFIXES):
        return _checkpoint(path)
    if name.endswith(".json"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            raise ContentError(f"{path.name} is not a readable JSON file ({error}).") from error
        return "a JSON file"
    return "a file"


def _safetensors(path: Path) -> str:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            count = len(list(weights.keys()))
    except Exception as error:  # noqa: BLE001 - the library's own errors vary by version; all mean "not this"
        raise ContentError(f"{path.name} is not a readable safetensors file ({error}).") from error
    if count == 0:
        raise ContentError(f"{path.name} is a safetensors file without any weights.")
    return f"a safetensors file of {count} tensors"


def _checkpoint(path: Path) -> str:
    from engine.models.adapters.weights import NotAWeightsFile, read_state_dict

    try:
        count = len(read_state_dict(path))  # memory-mapped, weights only: nothing is run
    except NotAWeightsFile as error:
        raise ContentError(str(error)) from error
    if count == 0:
        raise ContentError(f"{path.name} loads, but holds no weights.")
    return f"a PyTorch checkpoint of {count} tensors"


