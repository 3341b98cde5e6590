"""Generated image files in every format and mode the importer must handle."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient_rgb(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    pixels = np.stack(np.broadcast_arrays(x + 0 * y, y + 0 * x, (x + y) / 2), axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def marked_rgb(width: int, height: int) -> Image.Image:
    """Grey with a red top-left quadrant, to see where orientation puts it."""
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[: height // 2, : width // 2] = (255, 0, 0)
    return Image.fromarray(pixels, "RGB")


def write_jpeg(path: Path, size: tuple[int, int] = (320, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    gradient_rgb(*size).save(path, "JPEG", quality=90)
    return path


def write_png(path: Path, size: tuple[int, int] = (300, 180)) -> Path:
    gradient_rgb(*size).save(path, "PNG")
    return path


def write_tiff(path: Path, size: tuple[int, int] = (280, 190), compression: str = "tiff_lzw") -> Path:
    gradient_rgb(*size).save(path, "TIFF", compression=compression)
    return path


def write_tiff_16bit(path: Path, size: tuple[int, int] = (256, 128)) -> Path:
    values = np.tile(np.linspace(20000, 65535, size[0], dtype=np.uint16), (size[1], 1))
    Image.fromarray(values).save(path, "TIFF")
    return path


def write_tiff_1bit(path: Path, size: tuple[int, int] = (400, 300)) -> Path:
    pixels = np.zeros((size[1], size[0]), dtype=bool)
    pixels[::7, :] = True
    Image.fromarray(pixels).convert("1").save(path, "TIFF", compression="group4")
    return path


def write_tiff_cmyk(path: Path, size: tuple[int, int] = (210, 297)) -> Path:
    gradient_rgb(*size).convert("CMYK").save(path, "TIFF", compression="tiff_lzw")
    return path


def write_multipage_tiff(path: Path, sizes: list[tuple[int, int]]) -> Path:
    pages = [gradient_rgb(*size) for size in sizes]
    pages[0].save(path, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return path


def write_tiff_with_reduced_copy(path: Path) -> Path:
    """Page 1 (300×200), a reduced-resolution copy of it (NewSubfileType 1), page 2 (280×190)."""
    from PIL import TiffImagePlugin

    frames = [(gradient_rgb(300, 200), {}), (gradient_rgb(75, 50), {254: 1}), (marked_rgb(280, 190), {})]
    with TiffImagePlugin.AppendingTiffWriter(str(path), True) as stream:
        for image, info in frames:
            image.save(stream, "TIFF", tiffinfo=info)
            stream.newFrame()
    return path


def write_jpeg2000(path: Path, size: tuple[int, int] = (500, 400)) -> Path:
    gradient_rgb(*size).save(path, "JPEG2000", num_resolutions=4)
    return path


def write_webp(path: Path, size: tuple[int, int] = (240, 160)) -> Path:
    gradient_rgb(*size).save(path, "WEBP", quality=80)
    return path


def write_bmp(path: Path, size: tuple[int, int] = (200, 150)) -> Path:
    gradient_rgb(*size).save(path, "BMP")
    return path


def write_rotated_jpeg(path: Path, stored_size: tuple[int, int] = (300, 200), orientation: int = 6) -> Path:
    image = marked_rgb(*stored_size)
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return path


def write_png_bomb_header(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims an enormous image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target
