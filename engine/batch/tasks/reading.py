"""Reading a page on whichever side holds the scan: the worker, when it sees the very file imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.fileio import sha256_file
from engine.imaging.isolated import load_page_isolated
from engine.inventory import ImageRow


def sees_the_scan(row: ImageRow) -> bool:
    """Whether this computer sees the scan the page was imported from: the path holds a file with its content
    (another computer's mount may hold another file under the same name)."""
    path = Path(row.path)
    try:
        return path.is_file() and sha256_file(path) == row.sha256
    except OSError:
        return False


def page_rgb(row: ImageRow) -> Image.Image:
    """The page at full resolution, upright, in RGB (as every in-process job reads it)."""
    return load_page_isolated(Path(row.path), row.page_index, image_format=row.format).convert("RGB")


def page_array(row: ImageRow) -> np.ndarray:
    """:func:`page_rgb` as ``[H, W, 3]`` uint8."""
    return np.asarray(page_rgb(row))
