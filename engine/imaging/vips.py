"""Map-sized scans in bounded memory, with libvips (pyvips; the field's standard for huge images).

Pillow decodes a PNG or a strip TIFF whole: a 20000×15000 page is 900 MB of
pixels before any conversion. libvips streams it strip by strip, so reducing
such a page for a thumbnail or a preview, or turning it into a tiled pyramid for
the viewer, needs a few hundred megabytes whatever the page's size.

Nothing here applies an orientation flag: libvips returns the pixels as stored
and callers apply :func:`engine.imaging.orientation.apply_orientation` (or, for
pyramids, :data:`_VIPS_ORIENT`), so orientation stays done once, in one place.

Where pyvips is not installed everything falls back to Pillow (more memory,
same pixels): :func:`available` says which.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Pages above this are never decoded whole where libvips can stream them (the variable is for
# machines with little memory, and for exercising this path on small pages).
HUGE_PIXELS = int(os.environ.get("MARGINALIA_HUGE_PIXELS", "64000000"))
# Formats whose decoders libvips streams (JPEG and JPEG 2000 already decode reduced in Pillow).
STREAMED_FORMATS = frozenset({"PNG", "TIFF"})
PYRAMID_TILE = 512

_lock = threading.Lock()
_module: Any = None
_checked = False


def available() -> bool:
    return _vips() is not None


def _vips() -> Any:
    global _module, _checked
    with _lock:
        if not _checked:
            _checked = True
            try:
                import pyvips

                pyvips.cache_set_max_mem(64 * 1024 * 1024)  # the viewer's tiles have their own budget
                _module = pyvips
            except (ImportError, OSError):  # no wheel for this platform, or libvips missing
                _module = None
        return _module


def should_stream(image_format: str | None, width: int, height: int) -> bool:
    return image_format in STREAMED_FORMATS and width * height > HUGE_PIXELS and available()


def open_stored(path: Path, page_index: int, image_format: str, *, sequential: bool) -> Any:
    """The page as stored (no orientation applied), read through a file descriptor.

    A descriptor, not a file name: libvips would parse ``[...]`` in a name as
    options, and cannot take names that are not UTF-8.
    """
    pyvips = _vips()
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        source = pyvips.Source.new_from_descriptor(descriptor)
    finally:
        os.close(descriptor)  # the source holds its own duplicate
    access = "sequential" if sequential else "random"
    if image_format == "TIFF":
        return pyvips.Image.tiffload_source(source, page=page_index, access=access, fail_on="error")
    if page_index:
        raise ValueError(f"a {image_format} file has no page {page_index + 1}")
    if image_format == "PNG":
        return pyvips.Image.pngload_source(source, access=access, fail_on="error")
    if image_format == "JPEG":
        return pyvips.Image.jpegload_source(source, access=access, fail_on="error")
    raise ValueError(f"{image_format} is not read with libvips")


def to_display(image: Any) -> Any:
    """Any band layout and depth → 8-bit sRGB or grey, transparency shown as white paper."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation == "cmyk":
        image = image.colourspace("srgb")
    if image.format in ("ushort", "short"):
        image = (image / 257).cast("uchar")  # scaled, not clipped, as for Pillow's 16-bit pages
    elif image.format != "uchar":
        low, high = image.min(), image.max()
        image = ((image - low) * (255.0 / (high - low) if high > low else 0)).cast("uchar")
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    return image


def reduced(path: Path, page_index: int, image_format: str, max_side: int) -> Image.Image:
    """The stored page shrunk to fit a ``max_side`` square, streamed (memory bounded by strips)."""
    image = to_display(open_stored(path, page_index, image_format, sequential=True))
    image = image.thumbnail_image(max_side, height=max_side, no_rotate=True)
    return to_pil(image)


def to_pil(image: Any) -> Image.Image:
    pixels = image.numpy()
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(pixels), "L" if pixels.ndim == 2 else "RGB")


# How to turn a stored page into the displayed one, for each EXIF/TIFF orientation.
_VIPS_ORIENT: dict[int, tuple[str, ...]] = {
    2: ("fliphor",), 3: ("rot180",), 4: ("flipver",), 5: ("rot270", "fliphor"), 6: ("rot90",),
    7: ("rot90", "fliphor"), 8: ("rot270",),
}


def build_pyramid_file(path: Path, page_index: int, image_format: str, orientation: int, target: Path) -> None:
    """Write the displayed page as a tiled, JPEG-compressed pyramid TIFF at ``target`` (atomically).

    Upright pages stream from the scan to the file. A turned page needs random
    access, for which libvips decodes to a temporary file on disk rather than
    into memory.
    """
    image = to_display(open_stored(path, page_index, image_format, sequential=orientation == 1))
    for step in _VIPS_ORIENT.get(orientation, ()):
        image = image.fliphor() if step == "fliphor" else image.flipver() if step == "flipver" \
            else image.rot(step.replace("rot", "d"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        image.tiffsave(str(partial), tile=True, tile_width=PYRAMID_TILE, tile_height=PYRAMID_TILE, pyramid=True,
                       compression="jpeg", Q=90, bigtiff=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class PyramidFile:
    """Tiles of a pyramid TIFF written by :func:`build_pyramid_file`, read on demand.

    Level 0 is full resolution; each next level halves it. Implements the same
    ``level_count`` / ``level_size`` / ``tile`` as the in-memory pyramid.
    """

    def __init__(self, path: Path) -> None:
        pyvips = _vips()
        self.path = path
        first = pyvips.Image.new_from_file(str(path), access="random")
        count = first.get("n-pages") if "n-pages" in first.get_fields() else 1
        self._levels = [first] + [pyvips.Image.new_from_file(str(path), page=level, access="random")
                                  for level in range(1, count)]
        self._lock = threading.Lock()

    def level_count(self) -> int:
        return len(self._levels)

    def level_size(self, level: int) -> tuple[int, int]:
        return (self._levels[level].width, self._levels[level].height)

    def tile(self, level: int, column: int, row: int, tile_size: int = PYRAMID_TILE) -> Image.Image:
        image = self._levels[level]
        left, top = column * tile_size, row * tile_size
        width, height = min(tile_size, image.width - left), min(tile_size, image.height - top)
        with self._lock:  # one libvips image is not for two threads at once
            return to_pil(image.crop(left, top, width, height))
