"""Thumbnails and search renditions cached in the project, keyed by content hash and page.

Keying by content (not path or database id) keeps them valid when a folder is
moved and relinked, and lets two projects' caches be merged. A thumbnail fits a
256-pixel square (the gallery); a rendition has a 256-pixel shorter side, enough
for CLIP's 224-pixel input, so that indexing a collection for search never
decodes a scan again.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image

from engine.fileio import write_atomically

THUMBNAIL_SIDE = 256
_JPEG_QUALITY = 85
RENDITION_SHORT_SIDE = 256
_RENDITION_QUALITY = 90


def thumbnail_path(thumbnail_dir: Path, sha256: str, page_index: int) -> Path:
    return thumbnail_dir / sha256[:2] / f"{sha256}_p{page_index}.jpg"


def encode_thumbnail(page: Image.Image) -> bytes:
    """JPEG bytes of an already reduced ``RGB`` or ``L`` page."""
    if max(page.size) > THUMBNAIL_SIDE:
        page = page.copy()
        page.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    page.save(buffer, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def rendition_path(thumbnail_dir: Path, sha256: str, page_index: int) -> Path:
    return thumbnail_dir.parent / "renditions" / sha256[:2] / f"{sha256}_p{page_index}.jpg"


def rendition_decode_side(width: int, height: int) -> int:
    """The longer side a page must be decoded at for its shorter side to cover the rendition."""
    return min(max(width, height), math.ceil(RENDITION_SHORT_SIDE * max(width, height) / max(1, min(width, height))))


def encode_rendition(page: Image.Image) -> bytes:
    """JPEG bytes of a page reduced to a ``RENDITION_SHORT_SIDE`` shorter side (never enlarged)."""
    scale = RENDITION_SHORT_SIDE / min(page.size)
    if scale < 1:
        page = page.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))),
                           Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    page.convert("RGB").save(buffer, format="JPEG", quality=_RENDITION_QUALITY)
    return buffer.getvalue()


def write_cached_page(thumbnail_dir: Path, sha256: str, page_index: int, reduced: Image.Image) -> None:
    """A page's thumbnail and rendition, from the page decoded at (at most) :func:`rendition_decode_side`."""
    write_atomically(thumbnail_path(thumbnail_dir, sha256, page_index), encode_thumbnail(reduced), durable=False)
    write_atomically(rendition_path(thumbnail_dir, sha256, page_index), encode_rendition(reduced), durable=False)


def is_cached(thumbnail_dir: Path, sha256: str, page_index: int) -> bool:
    """Whether this content's page has both its thumbnail and its rendition here (it was decoded whole once)."""
    return (thumbnail_path(thumbnail_dir, sha256, page_index).exists()
            and rendition_path(thumbnail_dir, sha256, page_index).exists())
