"""Render the app icon (assets/marginalia.svg) to what each platform's installer wants:
PNGs in the freedesktop hicolor sizes, a Windows .ico and a macOS .icns.

    .venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QByteArray, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ICONS = Path(__file__).resolve().parent / "icons"
SOURCE = Path(__file__).resolve().parent.parent / "assets" / "marginalia.svg"  # also the window icon
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(size: int) -> Image.Image:
    renderer = QSvgRenderer(QByteArray(SOURCE.read_bytes()))
    image = QImage(size, size, QImage.Format.Format_RGBA8888)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return Image.frombuffer("RGBA", (size, size), bytes(image.constBits()), "raw", "RGBA", image.bytesPerLine(), 1)


def main() -> None:
    _app = QGuiApplication.instance() or QGuiApplication([])
    largest = render(1024)
    for size in HICOLOR_SIZES:
        render(size).save(ICONS / f"marginalia-{size}.png")
    largest.save(ICONS / "marginalia.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    largest.save(ICONS / "marginalia.icns")
    print(f"icons written to {ICONS}")


if __name__ == "__main__":
    main()
