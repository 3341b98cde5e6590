"""EXIF/TIFF orientation, applied exactly once, whatever Pillow version decodes the file.

Pillow's habits differ by version and format: Pillow 13 reports a TIFF's size
already oriented and transposes its pixels on load (then drops the tag), while
it leaves JPEG, PNG and WebP pixels as stored. Applying the flag on top of
Pillow's own work showed rotated pages. Rather than trust a version number,
:func:`pillow_behaviour` asks the installed Pillow once per format, with a tiny
oriented file written in memory, and every caller goes through
:func:`displayed_size` and :func:`orientation_left_to_apply`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image

TIFF_ORIENTATION_TAG = 274
EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientations 5-8 rotate by 90 degrees: the displayed width is the stored height.
SWAPS_AXES = frozenset({5, 6, 7, 8})

_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The orientation that undoes each one (a quarter turn one way undoes one the other way).
INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


@dataclass(frozen=True, slots=True)
class PillowBehaviour:
    """What the installed Pillow does itself with an orientation flag of one format."""

    size_oriented: bool  # ``Image.size`` after open is already the displayed size
    pixels_oriented: bool  # ``load()`` already rotates/mirrors the pixels


def stored_orientation(image: Image.Image) -> int:
    """The file's orientation flag (1-8) for the current frame, read before loading; 1 when absent or invalid."""
    if "original_orientation" in image.info:  # pillow-heif applied it and reset the tag; it keeps the flag here
        value = image.info["original_orientation"]
    elif image.format == "TIFF":
        value = getattr(image, "tag_v2", {}).get(TIFF_ORIENTATION_TAG, 1)
    else:
        try:
            value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
        except Exception:  # broken EXIF must not make a readable image unreadable
            value = 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in SWAPS_AXES else (width, height)


def displayed_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    """The size of the opened (not yet loaded) ``image`` as a person sees it."""
    if pillow_behaviour(image.format or "").size_oriented:
        return image.size
    return oriented_size(*image.size, orientation)


def orientation_left_to_apply(image_format: str, orientation: int) -> int:
    """The orientation still to apply to pixels that Pillow loaded (1: nothing left to do)."""
    return 1 if pillow_behaviour(image_format).pixels_oriented else orientation


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    step = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return image.transpose(step) if step is not None else image


@lru_cache(maxsize=None)
def pillow_behaviour(image_format: str) -> PillowBehaviour:
    """Ask the installed Pillow what it does with orientation 6 in ``image_format``."""
    # 32×16 stored, white block top-left on black; displayed with orientation 6 it is
    # 16×32 with the block top-right. Blocks of 8 survive JPEG's compression.
    stored = Image.new("L", (32, 16), 0)
    stored.paste(255, (0, 0, 8, 8))
    buffer = io.BytesIO()
    try:
        if image_format == "TIFF":
            stored.save(buffer, "TIFF", tiffinfo={TIFF_ORIENTATION_TAG: 6})
        elif image_format in ("JPEG", "PNG", "WEBP", "AVIF", "HEIF"):
            exif = Image.Exif()
            exif[EXIF_ORIENTATION_TAG] = 6
            options = {"quality": 95} if image_format != "PNG" else {}
            stored.save(buffer, image_format, exif=exif.tobytes(), **options)
        else:
            return PillowBehaviour(False, False)  # formats without an orientation flag
        buffer.seek(0)
        with Image.open(buffer, formats=[image_format]) as image:
            size_oriented = image.size == (16, 32)
            image.load()
            pixels = image.convert("L")
    except (OSError, KeyError, ValueError, RuntimeError):
        return PillowBehaviour(False, False)  # this Pillow cannot write the format: it has no habits in it
    if pixels.size == (16, 32):
        pixels_oriented = pixels.getpixel((12, 4)) > 128
    else:
        pixels_oriented = False
    return PillowBehaviour(size_oriented, pixels_oriented)
