"""A model tool that exists only in tests: it proves a tool can be added without touching the window."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel

from gui.canvas.tools import Tool
from gui.tools.seam import DockEntry, PaletteEntry, ToolContext, ToolOffer


class PinTool(Tool):
    name = "pin"
    label = "Pin"
    cursor = Qt.CursorShape.PointingHandCursor
    uses_default_selection = False

    def __init__(self) -> None:
        super().__init__(lambda: None, lambda geometry: None)
        self.pins: list[QPointF] = []

    def press(self, point: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        self.pins.append(point)
        return True


class PinPlugin:
    name = "pin"

    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.tool = PinTool()
        context.canvas.add_tool(self.tool)
        self.options = QLabel("Pin options")
        self.panel = QLabel("Pins")
        self.closed = 0
        self.counted: list[int] = []

    def offer(self) -> ToolOffer:
        count = QAction("&Count Pages", self.context.parent)
        count.triggered.connect(lambda checked=False: self.counted.append(len(self.context.pages.visible_image_ids())))
        return ToolOffer(palette=[PaletteEntry(self.tool, "&Pin", "J")], options=self.options,
                         menu=[("pin-count", count)], docks=[DockEntry("pins", "Pins", self.panel)])

    def project_closed(self) -> None:
        self.closed += 1


def create(context: ToolContext) -> PinPlugin:
    return PinPlugin(context)
