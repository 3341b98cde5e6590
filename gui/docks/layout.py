"""The shared shape of a side panel: a list (tree or table) above a row of small buttons."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QToolButton, QVBoxLayout, QWidget

ButtonSpec = tuple[str, str, Callable[[], object]]  # text, tooltip, action


def tree_with_buttons(panel: QWidget, tree: QAbstractItemView, buttons: Sequence[ButtonSpec]) -> None:
    row = QHBoxLayout()
    for text, tip, action in buttons:
        button = QToolButton(text=text, toolTip=tip)
        button.clicked.connect(lambda checked=False, action=action: action())
        row.addWidget(button)
    row.addStretch(1)
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(tree, 1)
    layout.addLayout(row)
