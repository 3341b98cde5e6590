"""Pages too large to hold in memory are viewed from a tiled pyramid file in the project's cache.

A 600-megapixel scan is 2.4 GB of pixels; the viewer never holds it. The first
time such a page is shown at full resolution, libvips streams it into
``PROJECT/cache/pyramids/<sha256>_p<page>.tif`` (tiled, JPEG-compressed, every
halving included), in a decoder process; from then on the viewer reads the
512-pixel tiles it shows. The folder is bounded: least recently used files go first.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from engine.imaging import vips
from engine.imaging.orientation import stored_orientation

PYRAMID_FORMATS = frozenset({"JPEG", "PNG", "TIFF"})
CACHE_BUDGET_BYTES = 8 * 1024**3


def wants_pyramid(image_format: str | None, width: int, height: int) -> bool:
    return image_format in PYRAMID_FORMATS and width * height > vips.HUGE_PIXELS and vips.available()


def pyramid_path(cache_dir: Path, sha256: str, page_index: int) -> Path:
    return cache_dir / "pyramids" / f"{sha256}_p{page_index}.tif"


def ensure_pyramid(path: Path, page_index: int, image_format: str, sha256: str, cache_dir: Path,
                   budget_bytes: int = CACHE_BUDGET_BYTES) -> Path:
    """The page's pyramid file, built if it is not there yet (run it in a decoder process)."""
    target = pyramid_path(cache_dir, sha256, page_index)
    if target.is_file():
        os.utime(target)  # recently used: kept longest
        return target
    with Image.open(path, formats=[image_format]) as image:
        if page_index:
            image.seek(page_index)
        orientation = stored_orientation(image)
    vips.build_pyramid_file(path, page_index, image_format, orientation, target)
    _prune(target.parent, budget_bytes, keep=target)
    return target


def _prune(folder: Path, budget_bytes: int, keep: Path) -> None:
    files = []
    for entry in folder.glob("*.tif"):
        try:
            info = entry.stat()
        except OSError:
            continue
        files.append((info.st_mtime, info.st_size, entry))
    total = sum(size for _, size, _ in files)
    for _, size, entry in sorted(files):
        if total <= budget_bytes:
            break
        if entry != keep:
            entry.unlink(missing_ok=True)
            total -= size
