"""Background model work pauses on battery when the curator asks, with real clicks in the Models dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from engine.models import precision
from gui.models_dialog import ModelsDialog
from gui.power_watch import BatteryWatch


def test_background_jobs_wait_on_battery_and_go_on_when_plugged_in(qtbot, window, tmp_path: Path,
                                                                    monkeypatch) -> None:
    from engine.models.store import ModelStore

    monkeypatch.setattr(precision, "_policy", precision.AUTOMATIC)
    dialog = ModelsDialog(ModelStore(tmp_path / "models"), window.jobs, window.notifications, window,
                          window.settings)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not window.settings.pause_on_battery
    qtbot.mouseClick(dialog.battery_choice, Qt.MouseButton.LeftButton)
    assert window.settings.pause_on_battery
    dialog.precision_choice.setCurrentIndex(dialog.precision_choice.findData("float32"))
    assert window.settings.model_precision == "float32" and precision.policy() == precision.FLOAT32

    battery = {"on": True}
    watch = BatteryWatch(window.jobs.background_gate, lambda: window.settings.pause_on_battery, parent=window,
                         sensor=lambda: battery["on"])
    watch.check()
    assert window.jobs.background_gate.paused

    def pages(progress, cancel) -> int:
        for _ in range(3):
            cancel.raise_if_cancelled()
        return 3

    results: list[int] = []
    background = window.jobs.submit("Indexing", pages, results.append, background=True)
    window.jobs.submit("Opening a page", lambda progress, cancel: (cancel.raise_if_cancelled(), -1)[1],
                       results.append)
    qtbot.waitUntil(lambda: -1 in results, timeout=5_000)  # foreground work is never paused
    qtbot.wait(600)
    assert results == [-1] and background.outcome == "running"
    battery["on"] = False
    watch.check()
    qtbot.waitUntil(lambda: 3 in results, timeout=5_000)
    qtbot.mouseClick(dialog.battery_choice, Qt.MouseButton.LeftButton)  # the setting off: never paused again
    battery["on"] = True
    watch.check()
    assert not window.jobs.background_gate.paused
