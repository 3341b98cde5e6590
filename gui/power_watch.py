"""Pauses background model work while the laptop runs on its battery, when the curator asks for that."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from engine.jobs import PauseGate
from engine.power import on_battery

POLL_MS = 20_000
REASON = "on battery"


class BatteryWatch(QObject):
    """Every ``POLL_MS`` (and at once when the setting changes): on battery and asked to → the background
    jobs' gate closes; on mains power, or the setting off → it opens. Foreground work (a page, a click)
    is never paused."""

    changed = Signal(bool)  # paused now

    def __init__(self, gate: PauseGate, wanted: Callable[[], bool], *, parent: QObject | None = None,
                 sensor: Callable[[], bool | None] = on_battery) -> None:
        super().__init__(parent)
        self._gate, self._wanted, self._sensor = gate, wanted, sensor
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        pause = self._wanted() and self._sensor() is True
        if pause and not self._gate.paused:
            self._gate.pause(REASON)
            self.changed.emit(True)
        elif not pause and self._gate.paused and self._gate.reason == REASON:
            self._gate.resume()
            self.changed.emit(False)
