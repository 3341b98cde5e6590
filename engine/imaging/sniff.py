"""Recognise an image format from a file's first bytes, never from its name.

Heritage collections are full of misnamed files (BMP bytes under ``.tif``,
JPEGs called ``.jpeg2``); only the content decides.
"""

from __future__ import annotations

from pathlib import Path

SNIFF_BYTES = 32

# The signatures of the formats Marginalia imports, by the name Pillow uses.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),  # BigTIFF
    (b"MM\x00+", 0, "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG2000"),  # raw J2K codestream
    (b"BM", 0, "BMP"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"%PDF-", 0, "PDF"),
)

# ISO base media files (HEIF, AVIF) say what they are in their first box's brand.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}

# Names whose extension promises an image: content that is not one is an error
# worth reporting, not a file to pass over quietly.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".jp2", ".j2k", ".jpx",
     ".jpf", ".webp", ".bmp", ".dib", ".gif", ".pdf", ".heic", ".heif", ".hif", ".avif"}
)


def sniff_format(head: bytes) -> str | None:
    """Return the format name for the first bytes of a file, or ``None``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
    for signature, offset, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if name == "BMP" and not _plausible_bmp(head):
                continue
            return name
    return None


def _plausible_bmp(head: bytes) -> bool:
    # "BM" alone is too weak: text files may start with it. The DIB header size
    # at offset 14 is one of a handful of known values.
    if len(head) < 18:
        return False
    dib_header_size = int.from_bytes(head[14:18], "little")
    return dib_header_size in {12, 40, 52, 56, 64, 108, 124}


def describe_content(head: bytes) -> str:
    """A short human description of what a non-image file seems to hold."""
    if not head:
        return "the file is empty"
    if head.lstrip().startswith((b"<?xml", b"<")):
        return "it holds XML or HTML text"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    if b"\x00" in head:
        return "its content is not a supported image format"
    return "it holds text"


def read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)
