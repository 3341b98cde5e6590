"""Learn an image file's pages, sizes and orientation from its headers alone.

Nothing here decodes pixel data: a 300-megapixel scan is probed in
milliseconds. Decompression bombs (headers that claim absurd sizes) are
refused here, before anything is allocated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.errors import MarginaliaError
from engine.imaging.orientation import displayed_size, stored_orientation

# The largest page Marginalia accepts: 600 megapixels (e.g. 30000 x 20000) is
# beyond any real scan; far above it lie only corrupt or hostile headers.
MAX_PIXELS = 600_000_000

# Pillow refuses images above twice this; we apply our own limit explicitly.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_TIFF_NEW_SUBFILE_TYPE = 254


class UnreadableImage(MarginaliaError):
    """The file claims to be an image but cannot be read as one."""


@dataclass(frozen=True, slots=True)
class PageInfo:
    """One page as it will be displayed (orientation applied)."""

    page_index: int
    width: int
    height: int
    mode: str
    orientation: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    format: str
    pages: tuple[PageInfo, ...]
    note: str = ""  # what the curator should know about how the file was taken (an animation's first frame)


def check_pixel_limit(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise UnreadableImage(
            f"the header claims {width:,}×{height:,} pixels ({width * height / 1e6:,.0f} megapixels), "
            f"above the {MAX_PIXELS / 1e6:,.0f}-megapixel safety limit; refused as a possible "
            "decompression bomb"
        )


def _is_reduced_resolution_copy(image: Image.Image) -> bool:
    # TIFFs often carry a thumbnail or pyramid level as an extra directory,
    # flagged in NewSubfileType; those are not pages of the document.
    subfile_type = getattr(image, "tag_v2", {}).get(_TIFF_NEW_SUBFILE_TYPE, 0)
    return isinstance(subfile_type, int) and bool(subfile_type & 1)


def probe(path: Path, image_format: str) -> FileInfo:
    """Read the pages of ``path``, which sniffing found to be ``image_format``."""
    if image_format == "PDF":
        from engine.imaging.pdf import probe_pdf  # noqa: PLC0415 - PDFium loads only for PDFs

        return probe_pdf(path)
    from engine.imaging.formats import require  # noqa: PLC0415 - the module imports this one

    require(image_format)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[image_format]) as image:
                if image_format == "GIF":
                    return _first_frame_only(image)
                return FileInfo(image_format, tuple(_pages(image)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImage(
            f"the header claims an image larger than {MAX_PIXELS / 1e6:,.0f} megapixels, beyond "
            "any real scan; refused as a possible decompression bomb"
        ) from error
    except UnreadableImage:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError) as error:
        raise UnreadableImage(f"the {image_format} header cannot be read ({error})") from error


def _first_frame_only(image: Image.Image) -> FileInfo:
    """A GIF is one picture: an animation's later frames are not pages of a document."""
    check_pixel_limit(*image.size)
    frames = getattr(image, "n_frames", 1)
    note = f"an animated GIF: only its first of {frames} frames was imported" if frames > 1 else ""
    return FileInfo("GIF", (PageInfo(0, image.width, image.height, image.mode, 1),), note)


def _pages(image: Image.Image) -> list[PageInfo]:
    pages: list[PageInfo] = []
    frame_count = getattr(image, "n_frames", 1)
    for frame in range(frame_count):
        if frame:
            image.seek(frame)
        if frame and _is_reduced_resolution_copy(image):
            continue
        check_pixel_limit(*image.size)
        orientation = stored_orientation(image)
        width, height = displayed_size(image, orientation)
        pages.append(PageInfo(frame, width, height, image.mode, orientation))
    if not pages:
        raise UnreadableImage("the file holds no image pages")
    return pages
