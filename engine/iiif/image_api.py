"""A IIIF Image API 2 or 3 image at full resolution: in one request where the server allows it, else its tiles
at scale factor 1 stitched together (servers cap ``maxWidth``/``maxHeight``/``maxArea``; level-0 servers have
only their pre-made tiles). Tiles are fetched a few at a time, kept in a cache by address (a second import
fetches nothing again), and checked: a tile of another size than asked, or one that does not decode to its
end, refuses the page rather than stitching a wrong one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image

from engine.errors import JobCancelled, MarginaliaError
from engine.iiif.fetch import fetch
from engine.iiif.manifest import ImageService, compliance_level
from engine.imaging.probe import MAX_PIXELS
from engine.jobs import CancelToken

PARALLEL_TILES = 4  # per page: a library's server is shared with its readers
MAX_TILE_BYTES = 64 * 1024 * 1024
T = TypeVar("T")


class ImageServiceError(MarginaliaError):
    """An image service that cannot give the page, with the reason."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An ``info.json``: the image's size, the largest the server will deliver, its tiles."""

    id: str
    version: int
    width: int
    height: int
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    tile_width: int | None = None
    tile_height: int | None = None
    scale_factors: tuple[int, ...] = ()
    level: int | None = None

    @property
    def whole_allowed(self) -> bool:
        """Whether one request may give the whole image at full size."""
        if self.level == 0:
            return False
        too_wide = self.max_width is not None and self.max_width < self.width
        too_high = self.max_height is not None and self.max_height < self.height
        too_large = self.max_area is not None and self.max_area < self.width * self.height
        return not (too_wide or too_high or too_large)


def read_info(data: bytes, service: ImageService, where: str) -> ImageInfo:
    try:
        info = json.loads(data)
        width, height = int(info["width"]), int(info["height"])
    except (ValueError, KeyError, TypeError) as error:
        raise ImageServiceError(f"{where} is not an Image API description (info.json): {error}") from None
    if width <= 0 or height <= 0:
        raise ImageServiceError(f"{where} describes an image of {width}×{height} pixels.")
    if width * height > MAX_PIXELS:
        raise ImageServiceError(f"{where} describes an image of {width * height / 1e6:,.0f} megapixels, above the "
                                f"{MAX_PIXELS / 1e6:,.0f}-megapixel limit a page may have here.")
    tiles = [tile for tile in info.get("tiles") or [] if isinstance(tile, dict) and tile.get("width")]
    tile = next((tile for tile in tiles if 1 in (tile.get("scaleFactors") or [1])), tiles[0] if tiles else None)
    level = compliance_level(info.get("profile"))
    level = service.level if level is None else level
    return ImageInfo(
        str(info.get("id") or info.get("@id") or service.id).rstrip("/"), service.version, width, height,
        _positive(info.get("maxWidth")), _positive(info.get("maxHeight")), _positive(info.get("maxArea")),
        _positive(tile.get("width")) if tile else None,
        _positive(tile.get("height") or tile.get("width")) if tile else None,
        tuple(int(f) for f in (tile.get("scaleFactors") or [1])) if tile else (), level)


def _positive(value: object) -> int | None:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    box: tuple[int, int, int, int]  # x, y, width, height of the page it covers, at full size


def plan(info: ImageInfo) -> list[Request]:
    """The requests that give the whole image at full size: one, or its tiles at scale factor 1 (the URLs of
    the version's canonical form, which level-0 servers serve as files)."""
    whole = "max" if info.version == 3 else "full"
    if info.whole_allowed:
        return [Request(f"{info.id}/full/{whole}/0/default.jpg", (0, 0, info.width, info.height))]
    if info.tile_width is None or (info.scale_factors and 1 not in info.scale_factors):
        raise ImageServiceError(f"{info.id} delivers neither the whole image at full size nor tiles at full "
                                "size, so the page cannot be had at full resolution.")
    tile_w, tile_h = info.tile_width, info.tile_height or info.tile_width
    requests = []
    for y in range(0, info.height, tile_h):
        for x in range(0, info.width, tile_w):
            w, h = min(tile_w, info.width - x), min(tile_h, info.height - y)
            size = f"{w},{h}" if info.version == 3 else f"{w},"
            requests.append(Request(f"{info.id}/{x},{y},{w},{h}/{size}/0/default.jpg", (x, y, w, h)))
    return requests


class TileCache:
    """Fetched bytes by address, in a folder: what was fetched once is not fetched again (resume)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()
        return self.folder / digest[:2] / digest

    def get(self, url: str) -> bytes | None:
        try:
            return self.path(url).read_bytes()
        except OSError:
            return None

    def read_or_fetch(self, url: str, download: Callable[[str], bytes], check: Callable[[bytes], T],
                      fetched: Callable[[str], None] | None = None) -> T:
        """``check(data)`` of the bytes at ``url``: from the cache, or downloaded and kept once ``check`` passes
        (bytes it refuses, a truncated image say, are never cached); ``fetched(url)`` is told of a download."""
        data = self.get(url)
        if data is not None:
            return check(data)
        data = download(url)
        checked = check(data)
        self.put(url, data)
        if fetched is not None:
            fetched(url)
        return checked

    def put(self, url: str, data: bytes) -> None:
        target = self.path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, target)  # never a half file under the address's name


def full_image(info: ImageInfo, cache: TileCache, *, cancel: CancelToken | None = None,
               fetched: Callable[[str], None] | None = None,
               get: Callable[[str], bytes] | None = None) -> Image.Image:
    """The whole image at full size, fetched (or read from ``cache``) and stitched. ``fetched(url)`` is told of
    each request that went to the server; cancelling stops within one tile's time and raises JobCancelled."""
    requests = plan(info)
    download = get or (lambda url: fetch(url, limit=MAX_TILE_BYTES, cancel=cancel).data)

    def one(request: Request) -> tuple[Request, Image.Image]:
        if cancel is not None and cancel.cancelled:
            raise JobCancelled()
        return request, cache.read_or_fetch(request.url, download, lambda data: decoded(data, request), fetched)

    page = Image.new("RGB", (info.width, info.height))
    with ThreadPoolExecutor(max_workers=min(PARALLEL_TILES, len(requests))) as pool:
        try:
            for request, tile in pool.map(one, requests):
                page.paste(tile, request.box[:2])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return page


def decoded(data: bytes, request: Request) -> Image.Image:
    """The tile (or whole image) ``data`` in ``RGB``, refused unless whole and of the size ``request`` asked."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()  # a truncated file fails here, not as a grey band later
            tile = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageServiceError(f"{request.url} is not a whole image ({error}).") from None
    expected = request.box[2:]
    if tile.size != expected:
        raise ImageServiceError(f"{request.url} gave {tile.size[0]}×{tile.size[1]} pixels where {expected[0]}×"
                                f"{expected[1]} were asked: the server's description does not match its images.")
    return tile
