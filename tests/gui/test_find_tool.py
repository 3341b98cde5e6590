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


def test_which_pages_were_read_before_is_asked_off_the_windows_thread(qtbot, window, scans_project: Path,
                                                                    detector_installed,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds: the check before a run is made slow, as a cache file a page is on a network share."""
    import threading
    import time

    from engine.batch.tasks.detect import DetectTask

    asked_on: list[bool] = []
    checked = DetectTask.to_do

    def slow_check(task, project, service, rows):  # noqa: ANN001, ANN202
        asked_on.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.8)
        return checked(task, project, service, rows)

    monkeypatch.setattr(DetectTask, "to_do", slow_check)
    open_and_wait(qtbot, window, scans_project)
    find = window.tools["find"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    options = find.options
    options.tiling.setCurrentIndex(options.tiling.findData("off"))
    options.box.setValue(5)
    qtbot.keyClicks(options.phrases, "stamp")
    pressed = time.perf_counter()
    qtbot.mouseClick(options.run, Qt.MouseButton.LeftButton)
    assert time.perf_counter() - pressed < 0.5 and not find.running  # the window goes on while it is asked
    qtbot.waitUntil(lambda: asked_on == [False] and find.running, timeout=10_000)
    qtbot.waitUntil(lambda: not find.running, timeout=60_000)
    assert _found(window)
    # The project closed while the check runs: nothing starts once it answers.
    before = len(_found(window))
    qtbot.mouseClick(options.run, Qt.MouseButton.LeftButton)
    window.close_project()
    qtbot.waitUntil(lambda: len(asked_on) == 2 and not window.jobs.running_jobs(), timeout=10_000)
    qtbot.wait(100)
    assert not find.running and not window.jobs.running_jobs()
    open_and_wait(qtbot, window, scans_project)
    assert len(_found(window)) == before
