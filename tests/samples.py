"""Generated image files in every format and mode the importer must handle."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient_rgb(width: int, height: int) -> Image.Image:
    """Red rising left to right, green top to bottom, blue their mean (each channel written once: a 6000×4500
    gradient in a fraction of a second)."""
    x = np.linspace(0, 255, width, dtype=np.float64)
    y = np.linspace(0, 255, height, dtype=np.float64)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[..., 0] = x.astype(np.uint8)[None, :]
    pixels[..., 1] = y.astype(np.uint8)[:, None]
    pixels[..., 2] = ((x[None, :] + y[:, None]) / 2).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


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


def write_scan_pdf(path: Path, pages: list[Image.Image], dpi: int = 150) -> Path:
    """A PDF whose pages are each one scanned image (JPEG inside), as scanners write them."""
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return path


def add_invisible_text_and_rotation(path: Path, target: Path, rotation: int = 0) -> Path:
    """The PDF with an invisible OCR text layer on page 1 (a "searchable PDF") and page 1 turned by ``rotation``."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    document = pdfium.PdfDocument(str(path))
    page = document[0]
    text = pdfium_c.FPDFPageObj_NewTextObj(document.raw, b"Helvetica", 12.0)
    words = ctypes.create_string_buffer("Was ist Aufklärung?\x00".encode("utf-16-le"))
    pdfium_c.FPDFText_SetText(text, ctypes.cast(words, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
    pdfium_c.FPDFTextObj_SetTextRenderMode(text, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)
    pdfium_c.FPDFPage_InsertObject(page.raw, text)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    if rotation:
        page.set_rotation(rotation)
    document.save(str(target))
    document.close()
    return target


def write_vector_pdf(path: Path, width_pt: int = 144, height_pt: int = 72) -> Path:
    """A one-page PDF with no image at all: a red rectangle over the top half, drawn as vectors."""
    content = f"1 0 0 rg 0 {height_pt // 2} {width_pt} {height_pt // 2} re f\n".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] /Contents 4 0 R >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path
