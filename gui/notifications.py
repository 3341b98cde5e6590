"""Non-modal messages at the top of the window: errors and results stay until dismissed, news fades.

A *result* is what came of work the curator asked for (an import, an export, a Find): it stays until they
have read it, since a count that vanishes after six seconds ("0 paragraphs") is a result lost."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

_STYLES = {
    "error": "background:#FDECEA; border:1px solid #E0A39B; color:#611A15;",
    "warning": "background:#FFF4E5; border:1px solid #E8C38E; color:#663C00;",
    "info": "background:#E8F1FB; border:1px solid #A9C7EA; color:#0B3C6E;",
}
_STYLES["result"] = _STYLES["info"]  # a result looks like news; it only stays
_INFO_SECONDS = 6
NoteAction = tuple[str, Callable[[], object]]  # a button's text, and what it does (the note then closes)


class Notification(QFrame):
    def __init__(self, kind: str, text: str, parent: QWidget | None = None,
                 actions: Sequence[NoteAction] = ()) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName("notification")
        self.setStyleSheet(f"#notification {{{_STYLES[kind]} border-radius:4px;}}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.buttons: list[QPushButton] = []
        for caption, act in actions:
            button = QPushButton(caption)
            button.clicked.connect(lambda checked=False, act=act: (act(), self.deleteLater()))
            layout.addWidget(button)
            self.buttons.append(button)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.deleteLater)
        layout.addWidget(close)


class NotificationArea(QWidget):
    """A stack of notifications; never steals focus, never blocks."""

    MAX_SHOWN = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 4, 6, 0)
        self._layout.setSpacing(4)

    def show_message(self, kind: str, text: str, actions: Sequence[NoteAction] = ()) -> Notification:
        note = Notification(kind, text, self, actions)
        self._layout.addWidget(note)
        note.show()
        shown = self.notifications()
        for old in shown[: max(0, len(shown) - self.MAX_SHOWN)]:
            old.deleteLater()
        if kind == "info" and not actions:  # a message that offers a next step waits for the curator
            QTimer.singleShot(_INFO_SECONDS * 1000, note.deleteLater)
        return note

    def error(self, text: str) -> Notification:
        return self.show_message("error", text)

    def warning(self, text: str) -> Notification:
        return self.show_message("warning", text)

    def info(self, text: str, actions: Sequence[NoteAction] = ()) -> Notification:
        return self.show_message("info", text, actions)

    def result(self, text: str, actions: Sequence[NoteAction] = ()) -> Notification:
        """What came of the curator's own request: it stays until dismissed."""
        return self.show_message("result", text, actions)

    def clear(self) -> None:
        """Another project opened: what was said of the previous one no longer applies."""
        for note in self.notifications():
            note.deleteLater()

    @staticmethod
    def dismiss(note: Notification) -> None:
        try:
            note.deleteLater()
        except RuntimeError:
            pass  # already gone (an info message that timed out)

    def notifications(self) -> list[Notification]:
        return [child for child in self.findChildren(Notification) if not child.isHidden()]
