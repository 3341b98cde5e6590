"""Guards against a broken Qt binding: PySide6 6.12.0 over-releases None on every void call."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QGraphicsRectItem, QTreeWidget, QTreeWidgetItem


def test_calls_that_return_nothing_keep_none_alive(qtbot) -> None:
    tree = QTreeWidget()
    qtbot.addWidget(tree)
    item = QTreeWidgetItem(["page"])
    tree.addTopLevelItem(item)
    shape = QGraphicsRectItem(0, 0, 10, 10)
    before = sys.getrefcount(None)
    for _ in range(500):
        item.setSelected(True)
        shape.setPos(1, 1)
    lost = before - sys.getrefcount(None)
    # Each lost reference brings a crash ("deallocating None") closer in a long session.
    assert lost < 50, f"the Qt binding released None {lost} times in 1000 calls"
