"""The Models dialog downloads through the real path (fake hub), imports and removes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from engine.models.catalogue import get_spec
from engine.models.store import ModelStore
from gui.models_dialog import ModelsDialog
from tests.modelkit.fake_hub import FakeHub
from tests.modelkit.weights_files import weights_file_bytes


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    spec = get_spec("dino-vits16")
    for file in spec.files:
        server.add(spec.source.repo_id, file.filename,
                   weights_file_bytes(file.filename, 300_000) if file.filename.endswith(".bin") else b"{}")
    yield server
    server.stop()


def test_download_with_progress_then_remove(qtbot, window, hub: FakeHub, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    dialog = ModelsDialog(store, window.jobs, window.notifications, window)
    qtbot.addWidget(dialog)
    text = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert str(store.root) in text and "MARGINALIA_MODELS" in text  # where models go, and how to move them
    assert "Nothing is downloaded until you click Download" in text
    assert store.installed() == [] and not hub.requests  # opening the dialog fetched nothing
    dialog.select("dino-vits16")
    assert dialog.download_button.isEnabled() and not dialog.remove_button.isEnabled()
    progress = []
    window.jobs.job_started.connect(lambda job: job.progressed.connect(progress.append))
    dialog.download_button.click()
    qtbot.waitUntil(lambda: store.get("dino-vits16") is not None
                    and "installed" in dialog.table.item(dialog.table.currentRow(), 4).text(), timeout=20_000)
    assert progress and progress[-1].done == progress[-1].total == sum(len(data) for data in hub.files.values())
    assert any("installed; verified against its published checksums" in n.label.text()
               for n in window.notifications.notifications())
    dialog.select("dino-vits16")
    assert dialog.remove_button.isEnabled() and not dialog.download_button.isEnabled()
    dialog.remove_button.click()
    assert store.get("dino-vits16") is None


def test_import_from_a_file(qtbot, window, tmp_path: Path, tiny_models) -> None:
    store = ModelStore(tmp_path / "models")
    dialog = ModelsDialog(store, window.jobs, window.notifications, window)
    qtbot.addWidget(dialog)
    checkpoint = tmp_path / "hi_sam_b.pth"
    checkpoint.write_bytes((tiny_models("hi-sam-vit-b") / "hi_sam_b.pth").read_bytes())
    dialog.select("hi-sam-vit-b")
    assert not dialog.download_button.isEnabled() and "Hi-SAM" in dialog.download_button.toolTip()
    assert dialog.table.item(dialog.table.currentRow(), 4).text() == "not installed: import by hand"
    assert dialog.where_to_get.isVisibleTo(dialog) and "github.com/ymy-k/Hi-SAM" in dialog.where_to_get.text()
    dialog.select("dino-vits16")
    assert dialog.table.item(dialog.table.currentRow(), 4).text() == "not installed"  # not "available"
    assert not dialog.where_to_get.isVisibleTo(dialog)
    dialog.select("hi-sam-vit-b")
    dialog.import_selected([checkpoint])
    qtbot.waitUntil(lambda: store.get("hi-sam-vit-b") is not None, timeout=10_000)
    assert store.get("hi-sam-vit-b").path("hi_sam_b.pth").read_bytes() == checkpoint.read_bytes()


def test_a_tool_needing_a_missing_model_offers_the_models_dialog(qtbot, window, tmp_path: Path, tiny_models) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from gui.model_hint import hint_for_missing_model, missing_models, show_models

    store = ModelStore(tmp_path / "models")
    opened: list[ModelsDialog] = []
    box = hint_for_missing_model(window, store, "clip-xlmr-b-32", "Search",
                                 lambda model_id: opened.append(show_models(window, store, model_id)))
    assert box is not None and box.isVisible() and "Multilingual CLIP" in box.text()
    assert "MB" in box.informativeText()
    assert missing_models(store, "clip-xlmr-b-32") == ["xlm-roberta-base-text", "clip-xlmr-b-32"]
    open_button = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    qtbot.mouseClick(open_button, Qt.MouseButton.LeftButton)
    assert opened and opened[0].isVisible()
    qtbot.addWidget(opened[0])
    assert opened[0].selected_spec().id == "clip-xlmr-b-32"
    assert all(spec.task != "component" for spec in opened[0].specs)
    for model_id in ("xlm-roberta-base-text", "clip-xlmr-b-32"):
        from tests.modelkit.tiny import tiny_spec

        store.import_files(tiny_spec(model_id), [tiny_models(model_id)])
    assert hint_for_missing_model(window, store, "clip-xlmr-b-32", "Search", opened.append) is None
    by_hand = hint_for_missing_model(window, store, "hi-sam-vit-b", "Find text", opened.append)
    assert by_hand is not None and "download of about" not in by_hand.informativeText()  # issue 27, 3
    assert "cannot download it" in by_hand.informativeText() and "github.com/ymy-k/Hi-SAM" in by_hand.informativeText()
    by_hand.close()


def test_the_device_setting_is_kept_and_used_for_the_next_load(qtbot, window, tmp_path: Path) -> None:
    from gui.model_hint import show_models

    store = ModelStore(tmp_path / "models")
    dialog = show_models(window, store)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "GPU" in dialog.devices_found.text() and "Looking" not in dialog.devices_found.text(),
                    timeout=20_000)
    before = window.model_service()
    assert before.manager._preference == "auto"
    dialog.device_choice.setFocus()
    qtbot.keyClicks(dialog.device_choice, "CPU only")  # type-ahead selects the entry, like a user would
    assert window.settings.model_device == "cpu"
    after = window.model_service()
    assert after is not before and after.manager.device.device == "cpu"
    reopened = show_models(window, store)
    qtbot.addWidget(reopened)
    assert reopened.device_choice.currentData() == "cpu"


def test_a_failed_download_says_why_and_offers_import_from_file(qtbot, window, tmp_path: Path, tiny_models,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing answers there
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    store = ModelStore(tmp_path / "models")
    dialog = ModelsDialog(store, window.jobs, window.notifications, window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select("dino-vits16")
    dialog.download_button.click()
    qtbot.waitUntil(dialog.problem_import.isVisible, timeout=20_000)
    assert "could not be reached" in dialog.problem.text() and "Errno" not in dialog.problem.text()
    folder = tiny_models("dino-vits16")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        lambda *args, **kwargs: ([str(p) for p in folder.iterdir()], ""))
    dialog.table.clearSelection()
    qtbot.mouseClick(dialog.problem_import, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: store.get("dino-vits16") is not None, timeout=20_000)


def test_large_jobs_go_to_the_cluster_set_here_and_without_ray_the_curator_is_told_how_to_get_it(
        qtbot, window, tmp_path: Path, tiny_models, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A curator types the cluster's address; Find Text over two pages is then sent there, one over a single page
    stays here; Ray missing, the job says how to get it (no traceback, nothing changed)."""
    import shutil
    import sys

    from PIL import Image

    from engine.ingest.scan_import import import_scans
    from engine.project import Project
    from gui.model_hint import show_models
    from tests.gui.conftest import open_and_wait
    from tests.modelkit.tiny import tiny_spec

    store = ModelStore()
    for model in ("sam-vit-b", "hi-sam-vit-b"):
        store.import_files(tiny_spec(model), [tiny_models(model)])
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("bengel_abriss01_1751_0007.jpg", "dannhauer_catechismus04_1653_0585.jpg"):
        Image.open(shared_data / "manuscripts" / name).convert("RGB").reduce(10).save(scans / f"{name}.png")
    with Project.create(tmp_path / "project") as project:
        import_scans(project, [scans])
    open_and_wait(qtbot, window, tmp_path / "project")

    dialog = show_models(window, store)
    qtbot.addWidget(dialog)
    assert dialog.cluster_choice.currentData() == "" and not dialog.cluster_address.isEnabled()
    dialog.cluster_choice.setFocus()
    qtbot.keyClick(dialog.cluster_choice, Qt.Key.Key_Down)  # the next entry: "Ray cluster at…"
    assert dialog.cluster_address.isEnabled()
    qtbot.keyClicks(dialog.cluster_address, "ray://head.example.org:10001")
    qtbot.keyClick(dialog.cluster_address, Qt.Key.Key_Return)
    assert window.settings.large_jobs_cluster == "ray://head.example.org:10001"
    dialog.close()

    tool = window.tools["text"].controller
    assert tool.context.cluster_for(1) is None
    assert tool.context.cluster_for(2).address == "ray://head.example.org:10001"
    monkeypatch.setitem(sys.modules, "ray", None)  # a plain install: no Ray
    qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    qtbot.waitUntil(tool.options.isVisible, timeout=3000)
    tool.options.scope.setCurrentIndex(tool.options.scope.findData("all"))
    qtbot.mouseClick(tool.options.run, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tool.running, timeout=30_000)
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert any("on the Ray cluster (ray://head.example.org:10001)" in text and 'marginalia[cluster]' in text
               for text in texts), texts
    assert not any("Traceback" in text for text in texts)
    with window.project.unit_of_work() as session:
        from sqlalchemy import func, select

        from engine.store.schema import Annotation
        assert session.scalar(select(func.count(Annotation.id))) == 0
    shutil.rmtree(scans)
