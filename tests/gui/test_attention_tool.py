"""The Attention tool with real keys and clicks on the tiny DINO: the layer over the page, opacity, heads, the
mass outline moved live without recomputing, the cached map on coming back, and proposals."""

from __future__ import annotations

from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import Qt
from sqlalchemy import select

from engine.models.store import ModelStore
from engine.store.schema import Annotation
from tests.gui.conftest import open_and_wait
from tests.modelkit.tiny import tiny_spec

MODEL = "dino-vits8"


@pytest.fixture
def dino_installed(tiny_models, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    store = ModelStore()
    for model in (MODEL, "dinov2-reg-small"):
        store.import_files(tiny_spec(model), [tiny_models(model)])
    return store


def test_the_attention_layer_follows_its_sliders_live_and_proposes_regions(qtbot, window, scans_project: Path,
                                                                            dino_installed, tmp_path: Path) -> None:
    """Seconds: the tiny DINO reads a large shared page in a real window, then proposes regions from it."""
    open_and_wait(qtbot, window, scans_project)
    tool = window.tools["attention"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.tool is tool.tool
    qtbot.waitUntil(tool.options.isVisible, timeout=3000)
    qtbot.mouseClick(tool.options.show_map, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tool.layer is not None and shiboken6.isValid(tool.layer)
                    and not tool.layer.pixmap().isNull(), timeout=60_000)
    layer = tool.layer
    gh, gw = tool.attention.grid
    assert (layer.pixmap().width(), layer.pixmap().height()) == (gw, gh)
    page = window.canvas.page.boundingRect()
    assert layer.sceneBoundingRect().width() == pytest.approx(page.width(), abs=1)  # over the whole page
    assert layer.zValue() < min((item.zValue() for item in window.canvas.scene().items()
                                 if type(item).__name__.endswith("ShapeItem")), default=1)
    assert "DINO ViT-S/8" in tool.options.legend.text() and "mean" in tool.options.legend.text()

    asked = tool.computed
    outline_before = tool.outline.path()
    tool.options.mass.setFocus()
    for _ in range(5):
        qtbot.keyClick(tool.options.mass, Qt.Key.Key_Left)  # 60 % → 55 %
    assert tool.options.mass_value.text() == "55 %"
    assert tool.outline.path() != outline_before and tool.outline.path().elementCount() > 0  # fewer patches
    assert tool.computed == asked  # the outline moved without asking for the map again
    qtbot.keyClick(tool.options.opacity, Qt.Key.Key_End)
    assert layer.opacity() == pytest.approx(1.0)
    before = layer.pixmap().toImage()
    tool.options.head.setCurrentIndex(tool.options.head.findData(0))  # one head
    assert layer.pixmap().toImage() != before and "head 0" in tool.options.legend.text()
    assert tool._head() == 0  # head 0 is a head: saving and proposing use it, not the mean

    # Away and back: the page's map comes from the cache.
    window.gallery.step(1)
    qtbot.waitUntil(lambda: tool.shown_for is not None and tool.shown_for[0] == window.labelling.image_id,
                    timeout=60_000)
    window.gallery.step(-1)
    qtbot.waitUntil(lambda: tool.shown_for is not None and tool.shown_for[0] == window.labelling.image_id,
                    timeout=60_000)
    assert (window.project.folder / "cache" / "attention").is_dir()

    saved = tmp_path / "map.png"
    tool.save_png(saved, over_page=True)  # as the Save PNG… dialog does, once a file is chosen
    qtbot.waitUntil(saved.is_file, timeout=30_000)
    from PIL import Image

    row = window.gallery.model.row_for(window.labelling.image_id)
    with Image.open(saved) as picture:
        assert picture.size == (row.width, row.height)

    qtbot.mouseClick(tool.options.propose, Qt.MouseButton.LeftButton)

    def proposed() -> list[Annotation]:
        with window.project.unit_of_work() as session:
            return list(session.scalars(select(Annotation).where(Annotation.source_model == MODEL)))

    qtbot.waitUntil(lambda: len(proposed()) > 0, timeout=60_000)
    assert {a.image_id for a in proposed()} == {window.labelling.image_id}
    window.actions_by_name["attention-layer"].trigger()  # Tools ▸ Show Attention Map: hidden again
    assert not tool.options.show_map.isChecked()
    assert tool.layer is None and tool.options.legend.text() == ""


def test_show_map_without_a_model_hints_once_and_never_loops(qtbot, window, scans_project: Path) -> None:
    """Issue 27, 1: the button and the menu action were two states that re-checked each other for ever, each
    round opening another "A model is needed" window."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    def hints() -> list[QMessageBox]:
        return [w for w in QApplication.topLevelWidgets()
                if isinstance(w, QMessageBox) and w.isVisible() and w.windowTitle() == "A model is needed"]

    open_and_wait(qtbot, window, scans_project)
    tool = window.tools["attention"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    qtbot.waitUntil(tool.options.isVisible, timeout=3000)
    qtbot.mouseClick(tool.options.show_map, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert len(hints()) == 1
    assert not tool.options.show_map.isChecked() and not window.actions_by_name["attention-layer"].isChecked()
    window.actions_by_name["attention-layer"].trigger()  # Tools ▸ Show Attention Map, the hint still open
    qtbot.mouseClick(tool.options.show_map, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert len(hints()) == 1 and not tool.options.show_map.isChecked()
    said = [n.label.text() for n in window.notifications.notifications()]
    assert any("The attention map waits for" in text and "Tools ▸ Models" in text for text in said)
    for box in hints():
        box.close()
    assert window.isEnabled() and tool.layer is None
