"""Bytes of real weights files (random values) for tests of downloads and imports: the store reads what a
file holds, so a stand-in must be a real safetensors file or PyTorch checkpoint, not noise."""

from __future__ import annotations

import io


def weights_file_bytes(filename: str, size: int) -> bytes:
    """A file of about ``size`` bytes in the format its name says (safetensors, else a PyTorch checkpoint)."""
    import torch

    values = {"weight": torch.rand(max(1, size // 4))}
    if filename.endswith(".safetensors"):
        from safetensors.torch import save

        return save(values)
    buffer = io.BytesIO()
    torch.save(values, buffer)
    return buffer.getvalue()
