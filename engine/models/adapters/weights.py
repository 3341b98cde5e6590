"""Reading weight files safely and building architectures without wasted initialisation."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import MarginaliaError

M = TypeVar("M")


class NotAWeightsFile(MarginaliaError):
    """The file cannot be read as plain weights (damaged, another format, or it carries code)."""


def read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors by name from a ``.safetensors`` file or a torch checkpoint, never running pickled code.

    Torch checkpoints are memory-mapped with ``weights_only=True``: a file
    that needs arbitrary classes to load is refused, not executed.
    """
    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise NotAWeightsFile(f"{path.name} is not a readable safetensors file ({error}).") from error
    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=True)  # a legacy (pre-zip) checkpoint
    except Exception as error:  # noqa: BLE001 - damaged bytes fail torch's readers in many ways (struct, index…)
        # An unpickling error that names a function or class to import: code that would run.
        if isinstance(error, pickle.UnpicklingError) and "global" in str(error).lower():
            raise NotAWeightsFile(f"{path.name} contains more than weights (it would run code when opened), "
                                  "so Marginalia refuses it. Use the publisher's file.") from error
        raise NotAWeightsFile(f"{path.name} is not a readable weights file (damaged, or a file of another "
                              "kind).") from error
    for wrapper in ("state_dict", "model"):  # training checkpoints wrap the weights (beside optimizer state)
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    if not isinstance(loaded, dict) or not all(torch.is_tensor(value) for value in loaded.values()):
        raise NotAWeightsFile(f"{path.name} does not hold a table of weights.")
    return loaded


def build_without_init(factory: Callable[[], M]) -> M:
    """Construct a module on the meta device: no memory, no random initialisation (seconds for ViT-H)."""
    import torch

    with torch.device("meta"):
        return factory()


def fill_from(module: Any, state_dict: dict[str, Any], what: str) -> None:
    """Load every weight of ``module`` from ``state_dict`` (exact key and shape match) in place."""
    try:
        module.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise NotAWeightsFile(f"The file does not match the {what} architecture: {' '.join(first)}") from error


def size_in_bytes(module: Any) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


_INITIALISERS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                 "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")


@contextmanager
def skipped_initialisation() -> Iterator[None]:
    """Build modules without random initialisation when their weights are loaded next anyway.

    For architectures whose constructors compute buffers (attention masks,
    position ids) that a meta-device build would leave empty. Not thread-safe
    with other model construction; loaders run one at a time per model thread.
    """
    import torch

    saved = {name: getattr(torch.nn.init, name) for name in _INITIALISERS}
    try:
        for name in _INITIALISERS:
            setattr(torch.nn.init, name, _leave_as_is)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def _leave_as_is(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor
