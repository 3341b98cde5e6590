"""The Find by description tool with real typing and clicks, on the tiny Grounding DINO of the test kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from engine.models.store import ModelStore
from gui.gallery import IMAGE_ID_ROLE
from engine.store.schema import Annotation, Category
from tests.gui.conftest import open_and_wait
from tests.modelkit.tiny import tiny_spec

MODEL = "grounding-dino-tiny"


@pytest.fixture
def detector_installed(tiny_models, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    store = ModelStore()
    store.import_files(tiny_spec(MODEL), [tiny_models(MODEL)])
    return store


def _found(window) -> list[Annotation]:
    with window.project.unit_of_work() as session:
        return list(session.scalars(select(Annotation).where(Annotation.source_model == MODEL)).all())


def test_typed_phrases_find_proposals_and_a_threshold_refilters_the_page(qtbot, window, scans_project: Path,
                                                                         detector_installed) -> None:
    open_and_wait(qtbot, window, scans_project)
    find = window.tools["find"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)  # the tool's key ("D"escription)
    assert window.canvas.tool is find.tool
    qtbot.waitUntil(find.options.isVisible, timeout=3000)  # the options bar lays itself out
    options = find.options
    options.tiling.setCurrentIndex(options.tiling.findData("off"))
    qtbot.mouseClick(options.phrases, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(options.phrases, "decorated initial = Initial")
    options.presets.setCurrentIndex(1)  # "decorated initial" … pick another preset:
    options.presets.activated.emit(2)  # "coat of arms", as choosing it from the list does
    assert options.phrases.text() == "decorated initial = Initial; coat of arms"
    for _ in range(25):  # the box threshold down to 0.10 with the keyboard: the random model scores low
        qtbot.keyClick(options.box, Qt.Key.Key_Left)
    assert options.box.value() == 10
    qtbot.mouseClick(options.run, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not find.running and len(_found(window)) > 0, timeout=60_000)
    found = _found(window)
    page = window.labelling.image_id
    assert {a.image_id for a in found} == {page} and {a.prompt for a in found} <= {"decorated initial", "coat of arms"}
    with window.project.unit_of_work() as session:
        names = {c.id: c.name for c in session.scalars(select(Category))}
    assert {names[a.category_id] for a in found if a.prompt == "decorated initial"} <= {"Initial"}
    assert {names[a.category_id] for a in found if a.prompt == "coat of arms"} <= {"Coat of arms"}
    qtbot.waitUntil(lambda: {r.id for r in window.labelling.records()} >= {a.id for a in found}, timeout=10_000)

    scores = sorted(a.score for a in found)
    options.box.setValue(min(95, int(scores[len(scores) // 2] * 100)))  # about half of them leave the page
    kept = options.box.value() / 100
    assert scores[0] <= kept
    qtbot.waitUntil(lambda: len(_found(window)) == sum(score > kept for score in scores), timeout=20_000)
    assert all(a.score > kept for a in _found(window))
    qtbot.waitUntil(lambda: {r.id for r in window.labelling.records() if r.source_model == MODEL}
                    == {a.id for a in _found(window)},
                    timeout=10_000)  # and the page shows just those
    window.close_project()
    open_and_wait(qtbot, window, scans_project)
    assert find.options.phrases.text() == "decorated initial = Initial; coat of arms"  # remembered per project


def test_selected_pages_scope_runs_on_the_pages_ctrl_clicked_in_the_gallery(qtbot, window, tmp_path: Path,
                                                                            shared_data: Path,
                                                                            detector_installed) -> None:
    import shutil

    from engine.ingest.scan_import import import_scans
    from engine.project import Project

    scans = tmp_path / "three"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg",
                 "kant_aufklaerung_1784_0020.jp2"):
        shutil.copy(shared_data / "manuscripts" / name, scans / name)
    with Project.create(tmp_path / "three-pages", name="Three") as project:
        import_scans(project, [scans])
    open_and_wait(qtbot, window, tmp_path / "three-pages")
    gallery = window.gallery
    view = gallery.view
    first, third = gallery.proxy.index(0, 0), gallery.proxy.index(2, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(first).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     view.visualRect(third).center())
    wanted = [gallery.proxy.index(row, 0).data(IMAGE_ID_ROLE) for row in (0, 2)]
    assert gallery.selected_image_ids() == wanted
    find = window.tools["find"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    options = find.options
    options.tiling.setCurrentIndex(options.tiling.findData("off"))
    options.scope.setCurrentIndex(options.scope.findData("selected"))
    options.box.setValue(5)  # the random model scores low: keep nearly everything
    qtbot.keyClicks(options.phrases, "stamp")
    qtbot.mouseClick(options.run, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not find.running and len(_found(window)) > 0, timeout=60_000)
    assert {a.image_id for a in _found(window)} == set(wanted)  # both selected pages, not the one between
