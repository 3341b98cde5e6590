"""The Search panel with the tiny CLIP of the test kit: index, search by typing, open a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.models.store import ModelStore
from tests.gui.conftest import open_and_wait
from tests.modelkit.tiny import tiny_spec


def test_index_search_and_open_a_result(qtbot, window, scans_project: Path, tiny_models,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    ModelStore().import_files(tiny_spec("clip-vit-b-32"), [tiny_models("clip-vit-b-32")])
    open_and_wait(qtbot, window, scans_project)
    panel = window.search
    qtbot.mouseClick(panel.index_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Indexed with" in panel.summary.text(), timeout=60_000)
    assert "2 page(s) now" in panel.summary.text()
    qtbot.keyClicks(panel.query, "a decorated initial")
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        qtbot.keyClick(panel.query, Qt.Key.Key_Return)
    assert panel.results.count() == 2 and "2 result(s)" in panel.summary.text()
    second = panel.results.item(1)
    image_id, _ = second.data(Qt.ItemDataRole.UserRole)
    rect = panel.results.visualItemRect(second)
    qtbot.mouseClick(panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.labelling.image_id == image_id
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        window.actions_by_name["similar-page"].trigger()
    assert panel.results.count() == 1 and panel.results.item(0).data(Qt.ItemDataRole.UserRole)[0] != image_id
