"""Decode a page as it is displayed: oriented, in a displayable mode, reduced when asked.

Reduced decoding avoids full-resolution work wherever the format allows it:
JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT domain, JPEG 2000 decodes a
lower resolution level. Other formats are decoded fully and then resized.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from engine.imaging import vips
from engine.imaging.formats import require
from engine.imaging.orientation import apply_orientation, orientation_left_to_apply, stored_orientation
from engine.imaging.probe import UnreadableImage, check_pixel_limit
from engine.imaging.sniff import read_head, sniff_format


def to_display_mode(image: Image.Image) -> Image.Image:
    """Convert any decoded mode (1-bit, 16-bit, CMYK, palette...) to ``RGB`` or ``L``.

    16-bit and float data are scaled, not clipped: a 16-bit scan whose values
    all exceed 255 must not turn white.
    """
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scaled = pixels / 257.0
        else:
            low, high = float(pixels.min()), float(pixels.max())
            scaled = (pixels - low) * (255.0 / (high - low)) if high > low else pixels * 0
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("LA", "La"):
        return _flatten_alpha(image.convert("RGBA")).convert("L")
    if image.mode in ("RGBA", "RGBa", "PA") or (image.mode == "P" and "transparency" in image.info):
        return _flatten_alpha(image.convert("RGBA"))
    return image.convert("RGB")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    # Transparent parts of a scan show as white paper, not black.
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _request_reduced_decode(image: Image.Image, max_side: int, jpeg2000_levels: int) -> int:
    """Ask the decoder for a cheaper resolution; return the JPEG 2000 level used."""
    # The result must fit a max_side square: only the longer side needs max_side pixels.
    if image.format == "JPEG":
        scale = min(1.0, max_side / max(image.size))
        image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    elif image.format == "JPEG2000":
        longest_ratio = max(image.size) / max_side
        wanted = int(math.floor(math.log2(longest_ratio))) if longest_ratio >= 2 else 0
        level = min(wanted, jpeg2000_levels)
        if level:
            image.reduce = level  # type: ignore[method-assign,assignment]
        return level
    return 0


class _ReducedDecodeFailed(Exception):
    def __init__(self, level: int, error: Exception) -> None:
        super().__init__(str(error))
        self.level = level
        self.error = error


def load_page(
    path: Path,
    page_index: int = 0,
    *,
    max_side: int | None = None,
    image_format: str | None = None,
    least_side: int | None = None,
) -> Image.Image:
    """Decode one page as displayed, mode ``RGB`` or ``L``.

    With ``max_side`` the result fits in a ``max_side`` square, decoded at the
    lowest resolution that still covers it. ``least_side`` (below ``max_side``)
    lets the decoder's own cheap reductions (JPEG's, JPEG 2000's levels) stop
    anywhere from ``least_side`` up, skipping a full decode and a resize: for a
    quick look, not for a model's input. Raises :class:`UnreadableImage` for
    truncated or corrupt data.
    """
    if image_format is None:
        image_format = sniff_format(read_head(path))  # a PDF is not for Pillow; the rest it recognises itself
    if image_format == "PDF":
        from engine.imaging.pdf import load_pdf_page  # noqa: PLC0415 - PDFium loads only for PDFs

        return load_pdf_page(path, page_index, max_side)
    if image_format is not None:
        require(image_format)
    formats = [image_format] if image_format else None
    jpeg2000_levels = 32
    while True:
        try:
            return _load(path, page_index, max_side, formats, jpeg2000_levels, least_side)
        except _ReducedDecodeFailed as failure:
            # Some JPEG 2000 files hold fewer resolution levels than their size
            # suggests: step down a level rather than fail.
            jpeg2000_levels = failure.level - 1
        except UnreadableImage:
            raise
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise UnreadableImage(_describe_decode_error(error)) from error


def _load(
    path: Path,
    page_index: int,
    max_side: int | None,
    formats: list[str] | None,
    jpeg2000_levels: int,
    least_side: int | None = None,
) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path, formats=formats) as image:
            if page_index:
                image.seek(page_index)
            check_pixel_limit(*image.size)
            if max_side is not None and vips.should_stream(image.format, *image.size):
                return _load_streamed(path, page_index, image.format, max_side, stored_orientation(image))
            orientation = orientation_left_to_apply(image.format or "", stored_orientation(image))
            level = 0
            if max_side is not None:
                level = _request_reduced_decode(image, min(least_side or max_side, max_side), jpeg2000_levels)
            try:
                image.load()
            except (OSError, ValueError) as error:
                if level:
                    raise _ReducedDecodeFailed(level, error) from error
                raise
            page = to_display_mode(image)
            if page is image:
                page = image.copy()
    if max_side is not None and max(page.size) > max_side:
        page.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return apply_orientation(page, orientation)


def _load_streamed(path: Path, page_index: int, image_format: str, max_side: int, orientation: int) -> Image.Image:
    """A huge PNG or TIFF page reduced by libvips strip by strip; it returns stored pixels, so the whole
    orientation is applied here."""
    try:
        page = vips.reduced(path, page_index, image_format, max_side)
    except Exception as error:  # noqa: BLE001 - pyvips.Error and friends: the data is bad
        raise UnreadableImage(_describe_decode_error(error)) from error
    return apply_orientation(page, orientation)


def _describe_decode_error(error: Exception) -> str:
    text = str(error)
    lowered = text.lower()
    if "truncated" in lowered or isinstance(error, EOFError) or "premature end" in lowered:
        return "the image data is truncated (the file ends too early); it may be an incomplete copy"
    return f"the image data is corrupt or unsupported ({text or type(error).__name__})"
