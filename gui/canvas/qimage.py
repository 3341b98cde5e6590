"""Conversions between Pillow images and Qt images."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage


def to_qimage(image: Image.Image) -> QImage:
    """A deep copy as a ``QImage`` (safe to create on a worker thread)."""
    if image.mode == "L":
        data = image.tobytes()
        return QImage(data, image.width, image.height, image.width, QImage.Format.Format_Grayscale8).copy()
    if image.mode == "RGBX":
        data = image.tobytes()
        return QImage(data, image.width, image.height, image.width * 4, QImage.Format.Format_RGBX8888).copy()
    if image.mode != "RGB":
        image = image.convert("RGB")
    data = image.tobytes()
    return QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888).copy()
