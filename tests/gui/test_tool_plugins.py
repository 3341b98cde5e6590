"""Model tools are plug-ins: a module listed in the catalogue gets a palette entry, options, menu and dock."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QToolBar, QToolButton

from gui.tools import catalogue
from tests.gui.conftest import CURATOR, open_and_wait, shown_window


@pytest.fixture
def window_with_pin(qtbot, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(catalogue, "TOOL_MODULES", (*catalogue.TOOL_MODULES, "tests.gui.example_tool"))
    main = shown_window(qtbot)
    yield main
    main.close()


def test_a_tool_added_to_the_catalogue_appears_everywhere_it_should(qtbot, window_with_pin,
                                                                    scans_project: Path) -> None:
    window = window_with_pin
    pin = window.tools["pin"]
    open_and_wait(qtbot, window, scans_project)
    palette = window.findChild(QToolBar, "toolbar-palette")
    buttons = [b.text() for b in palette.findChildren(QToolButton) if b.defaultAction() is not None]
    # Palette order follows the catalogue; the test's Pin tool comes last.
    assert buttons == ["Select", "Box", "Polygon", "Brush", "Eraser", "SAM", "Find", "Text", "Attention", "Pin"]
    tools_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    assert "&Count Pages" in [a.text() for a in tools_menu.actions()]
    assert "Pins" in [a.text() for a in window.menuBar().actions()[2].menu().actions()]  # View ▸ Pins

    assert not pin.options.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_J)  # its key, from its palette entry
    assert window.canvas.tool is pin.tool
    qtbot.waitUntil(pin.options.isVisible, timeout=2_000)  # the bar lays out on the next event loop turn
    assert not window.tools["sam"].options.isVisible()  # one tool's options at a time
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.canvas.mapFromScene(QPointF(40, 50)))
    (pinned,) = pin.tool.pins  # in page pixels (within a screen pixel at this zoom)
    assert abs(pinned.x() - 40) < 4 and abs(pinned.y() - 50) < 4
    window.actions_by_name["pin-count"].trigger()
    assert pin.counted == [2]  # its collaborators see the open project's pages
    window.actions_by_name["tool-select"].trigger()
    qtbot.waitUntil(lambda: not pin.options.isVisible(), timeout=2_000)
    window.close_project()
    assert pin.closed == 1


def test_two_tools_with_one_name_are_refused(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    monkeypatch.setattr(catalogue, "TOOL_MODULES", (*catalogue.TOOL_MODULES, "gui.tools.sam"))
    with pytest.raises(ValueError, match="'sam'"):
        MainWindow(AppSettings(), CURATOR)


def test_no_two_actions_of_the_window_share_a_key(qtbot, window) -> None:
    """A tool's key that another action already has would make both keys silently dead (Qt calls the
    shortcut ambiguous): every key of the menus, the palette and the tools is one action's."""
    from PySide6.QtGui import QAction

    owners: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            key = sequence.toString()
            if key:
                assert key not in owners or owners[key] == action.text(), \
                    f"{key} is both {owners[key]!r} and {action.text()!r}"
                owners[key] = action.text()
    assert {"T", "H", "D"} <= set(owners)
