"""Turning a decoded page into a vision model's input: CLIP's resize-and-crop, and normalisation."""

from __future__ import annotations

import numpy as np
from PIL import Image


def centre_square(image: Image.Image, side: int) -> Image.Image:
    """Shorter side to ``side`` (bicubic; no work when it already is), then the centred square."""
    image = image.convert("RGB")
    scale = side / min(image.size)
    target = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    resized = image if image.size == target else image.resize(target, Image.Resampling.BICUBIC)
    left, top = (resized.width - side) // 2, (resized.height - side) // 2
    return resized.crop((left, top, left + side, top + side))


def normalised(image: Image.Image, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """An ``RGB`` image → ``[3, H, W]`` float32, scaled to 0..1 and normalised per channel."""
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32))
                                .transpose(2, 0, 1))
