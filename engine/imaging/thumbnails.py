"""Thumbnails cached in the project, keyed by content hash and page.

Keying by content (not path or database id) keeps thumbnails valid when a
folder is moved and relinked, and lets two projects' caches be merged.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

THUMBNAIL_SIDE = 256
_JPEG_QUALITY = 85


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
