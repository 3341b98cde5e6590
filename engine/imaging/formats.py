"""Formats beyond Pillow's own: HEIF/HEIC through the pillow-heif plug-in, registered on first use."""

from __future__ import annotations

import threading

from engine.imaging.probe import UnreadableImage

_lock = threading.Lock()
_heif: bool | None = None

HEIF_MISSING = ("HEIC/HEIF pictures cannot be read on this installation (the pillow-heif plug-in is missing); "
                "convert them to JPEG or TIFF first, for example with your photo application's export")


def require(image_format: str) -> None:
    """Make sure Pillow can open ``image_format``; :class:`UnreadableImage` saying what to do when not."""
    if image_format == "HEIF" and not _heif_registered():
        raise UnreadableImage(HEIF_MISSING)


def _heif_registered() -> bool:
    global _heif
    with _lock:
        if _heif is None:
            try:
                import pillow_heif
            except ImportError:
                _heif = False
            else:
                pillow_heif.register_heif_opener()
                _heif = True
        return _heif
