"""The tool palette: one icon per tool, tooltips naming the key, the current category shown and chosen there."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QToolBar, QToolButton

from gui.icons import ICONS, themed_icon
from tests.gui.conftest import open_and_wait


def _ink_pixels(icon, side: int = 24) -> int:
    image = icon.pixmap(side, side).toImage().convertToFormat(QImage.Format.Format_ARGB32)
    return sum(1 for y in range(side) for x in range(side) if image.pixelColor(x, y).alpha() > 128)


def test_every_icon_renders_and_unknown_tools_get_a_generic_one(qtbot) -> None:
    names = sorted(path.stem for path in ICONS.glob("*.svg"))
    assert {"select", "box", "polygon", "sam", "brush", "eraser", "layers"} <= set(names)
    inked = {name: _ink_pixels(themed_icon(name)) for name in names}
    assert all(count > 20 for count in inked.values()), inked  # something is drawn, not an empty square
    assert _ink_pixels(themed_icon("no such tool")) == inked["tool"]


def test_the_palette_is_vertical_keyed_and_shows_the_current_category(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    palette = window.findChild(QToolBar, "toolbar-palette")
    assert window.toolBarArea(palette) == Qt.ToolBarArea.LeftToolBarArea
    tools = [b for b in palette.findChildren(QToolButton) if b.defaultAction() is not None]
    assert [b.defaultAction().toolTip() for b in tools] == ["Select / Move (V)", "Box (B)", "Polygon (P)",
                                                             "Brush (U)", "Eraser (X)", "SAM (click to mask) (S)",
                                                             "Find by Description (D)", "Find Text (T)",
                                                             "Attention Heat Map (H)"]
    assert all(not b.icon().isNull() for b in tools)
    qtbot.mouseClick(tools[1], Qt.MouseButton.LeftButton)
    assert window.canvas.tool.name == "box"

    button = window.category_button
    current = window.labelling.current_category()
    assert button.text() == current.name
    button.menu().aboutToShow.emit()
    other = next(a for a in button.menu().actions() if not a.isChecked())
    other.trigger()
    chosen = window.labelling.current_category()
    assert chosen.id != current.id and other.text().startswith(chosen.name) and button.text() == chosen.name
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)  # a hotkey changes it too, and the palette follows
    assert button.text() == window.labelling.current_category().name == window.labelling.categories()[0].name
