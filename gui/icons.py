"""Icons drawn for Marginalia (``assets/icons/*.svg``), inked in the theme's own text colour.

The SVGs use the placeholder colour ``INK``; it becomes the palette's window-text colour (and its
disabled colour for the disabled state), so each icon reads on light and dark themes alike.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from engine.paths import ASSETS_DIR

ICONS = ASSETS_DIR / "icons"
SIZES = (16, 24, 32, 48)


def themed_icon(name: str) -> QIcon:
    """The icon ``name`` in the current palette's colours; an unknown name gets the generic tool icon."""
    palette = QApplication.palette()
    ink = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText).name()
    faded = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    return _icon(name if (ICONS / f"{name}.svg").is_file() else "tool", ink, faded)


@cache
def _icon(name: str, ink: str, faded: str) -> QIcon:
    source = (ICONS / f"{name}.svg").read_text(encoding="utf-8")
    icon = QIcon()
    for colour, mode in ((ink, QIcon.Mode.Normal), (faded, QIcon.Mode.Disabled)):
        renderer = QSvgRenderer(QByteArray(source.replace("INK", colour).encode("utf-8")))
        for side in SIZES:
            pixmap = QPixmap(side, side)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter, QRectF(0, 0, side, side))
            painter.end()
            icon.addPixmap(pixmap, mode)
    return icon


def swatch_icon(colour: str, side: int = 20) -> QIcon:
    """A category's colour as a rounded square with a thin border (visible on any background)."""
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor(QApplication.palette().color(QPalette.ColorRole.WindowText)))
    painter.setBrush(QColor(colour))
    painter.drawRoundedRect(QRectF(2.5, 2.5, side - 5, side - 5), 3, 3)
    painter.end()
    return QIcon(pixmap)
