"""One canvas's image fetched and stored as a page file of the project's.

Where the server hands the whole page in one file (a JPEG or PNG without an orientation flag), that file is kept
byte for byte: it is the library's own copy, and re-encoding it would cost time and, for a JPEG, fidelity.
Stitched tiles are stored as PNG (lossless). The page's thumbnail and rendition are made from the pixels
already in memory, so the scan import that follows need not decode the page again (its cache is keyed by
content).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PilImage

from engine.errors import JobCancelled
from engine.iiif.fetch import fetch
from engine.iiif.image_api import ImageServiceError, Request, TileCache, decoded, full_image, plan, read_info
from engine.iiif.manifest import Canvas, ManifestError
from engine.imaging.orientation import stored_orientation
from engine.imaging.thumbnails import rendition_decode_side, write_cached_page
from engine.jobs import CancelToken

KEPT_AS_DELIVERED = {"JPEG": ".jpg", "PNG": ".png"}
STORED_SUFFIXES = (".png", ".jpg")


@dataclass(slots=True)
class FetchedPage:
    """A canvas's image: its pixels (``RGB``), the server's file where it delivered the page whole, and the
    addresses it came from (their cache entries go once the page is stored)."""

    pixels: PilImage.Image
    delivered: bytes | None
    requests: list[str]


def fetch_page(canvas: Canvas, size: int | None, cache: TileCache, cancel: CancelToken | None,
               counted: Callable[[str], None]) -> FetchedPage:
    """The canvas's image at full resolution, or at most ``size`` pixels on its longer side."""
    service = canvas.image.service
    if service is None:
        if not canvas.image.url:
            raise ManifestError(f"{canvas.label} has neither an image service nor an image address")
        return _whole(canvas.image.url, None, cache, counted, cancel)
    info_url = f"{service.id}/info.json"
    info = cache.read_or_fetch(info_url, lambda url: fetch(url, cancel=cancel).data,
                               lambda data: read_info(data, service, info_url), counted)
    if size is not None and size < max(info.width, info.height):
        return _whole(f"{info.id}/full/!{size},{size}/0/default.jpg", None, cache, counted, cancel)
    requests = plan(info)
    if len(requests) == 1:
        return _whole(requests[0].url, requests[0], cache, counted, cancel)
    pixels = full_image(info, cache, cancel=cancel, fetched=counted)
    return FetchedPage(pixels, None, [request.url for request in requests])


def _whole(url: str, expected: Request | None, cache: TileCache, counted: Callable[[str], None],
           cancel: CancelToken | None) -> FetchedPage:
    def download(address: str) -> bytes:
        if cancel is not None and cancel.cancelled:
            raise JobCancelled()
        return fetch(address, cancel=cancel).data

    def check(data: bytes) -> FetchedPage:
        if expected is not None:
            return FetchedPage(decoded(data, expected), data, [url])
        try:
            with PilImage.open(io.BytesIO(data)) as opened:
                opened.load()
                return FetchedPage(opened.convert("RGB"), data, [url])
        except (OSError, SyntaxError, ValueError, PilImage.DecompressionBombError) as error:
            raise ImageServiceError(f"{url} is not a whole image ({error}).") from None

    return cache.read_or_fetch(url, download, check, counted)


def stored_page(stem: Path) -> Path | None:
    """The page file an earlier run stored under ``stem`` (any of the suffixes a page is stored with)."""
    return next((path for suffix in STORED_SUFFIXES if (path := stem.with_name(stem.name + suffix)).exists()), None)


def store_page(page: FetchedPage, stem: Path, cache: TileCache, thumbnail_dir: Path) -> Path:
    """Write the page under ``stem`` (whole or not at all) with its thumbnail and rendition; the path written."""
    suffix = _delivered_suffix(page.delivered)
    if suffix is not None and page.delivered is not None:
        data = page.delivered
    else:
        buffer = io.BytesIO()
        page.pixels.save(buffer, "PNG", compress_level=1)  # level 6 halved the pages/s of bench/iiif.py
        data, suffix = buffer.getvalue(), ".png"
    sha256 = hashlib.sha256(data).hexdigest()
    reduced = page.pixels
    side = rendition_decode_side(*reduced.size)
    if max(reduced.size) > side:
        reduced = reduced.copy()
        reduced.thumbnail((side, side), PilImage.Resampling.LANCZOS, reducing_gap=3.0)  # as a decode reduces
    write_cached_page(thumbnail_dir, sha256, 0, reduced)
    path = stem.with_name(stem.name + suffix)  # a label's dots are not a suffix
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)  # a page is there whole, or not at all
    finally:
        partial.unlink(missing_ok=True)
    for url in page.requests:  # the page holds them now: the cache only bridges a page stopped half-way
        cache.path(url).unlink(missing_ok=True)
    return path


def _delivered_suffix(data: bytes | None) -> str | None:
    """The suffix to keep the server's file under, or ``None`` where it must be re-encoded (another format, or
    CMYK, an orientation flag that would turn the page away from its canvas)."""
    if data is None:
        return None
    try:
        with PilImage.open(io.BytesIO(data)) as opened:
            suffix = KEPT_AS_DELIVERED.get(opened.format or "")
            plain = opened.mode in ("L", "RGB") and stored_orientation(opened) == 1  # no CMYK, no turned page
            return suffix if plain else None
    except (OSError, SyntaxError, ValueError):
        return None
