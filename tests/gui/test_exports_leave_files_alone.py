"""The app's exports (COCO with or without images, PAGE, ALTO) leave a curator's folder byte-identical: a
refusal in a notification, never a replaced scan, ground truth or COCO file (issue 26)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QFileDialog

from curators_folder import changed_or_gone, fingerprint, make_curators_folder
from tests.gui.conftest import open_and_wait


def _refusals(window) -> list[str]:
    return [note.label.text() for note in window.notifications.notifications()
            if "Nothing was exported" in note.label.text()]


def test_every_export_of_the_app_leaves_the_curators_files_as_they_were(qtbot, window, tmp_path: Path,
                                                                         monkeypatch) -> None:
    collection, project_folder = make_curators_folder(tmp_path)
    before = fingerprint(collection)
    open_and_wait(qtbot, window, project_folder)
    for with_images in (False, True):
        def fill_in(with_images: bool = with_images) -> None:
            dialog = window.files.export_dialog
            dialog.file_edit.selectAll()
            qtbot.keyClicks(dialog.file_edit, str(collection / "dataset.json"))
            if with_images:
                qtbot.mouseClick(dialog.with_images, Qt.MouseButton.LeftButton,
                                 pos=QPoint(8, dialog.with_images.height() // 2))
            qtbot.keyClick(dialog.file_edit, Qt.Key.Key_Return)

        QTimer.singleShot(100, fill_in)
        window.files.ask_export_coco(include_proposals=with_images)
        qtbot.waitUntil(lambda count=len(_refusals(window)) + 1: len(_refusals(window)) == count, timeout=20_000)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(collection))
    for fmt in ("page", "alto"):
        window.actions_by_name[f"export-{fmt}"].trigger()
        window.jobs.wait(20_000)
    qtbot.waitUntil(lambda: len(_refusals(window)) == 3, timeout=5_000)  # PAGE meets the ground truth
    assert changed_or_gone(before, fingerprint(collection)) == []
    assert "dataset.json already exists and was not written by a Marginalia export" in _refusals(window)[0]
    assert "letter.page.xml already exists" in _refusals(window)[2]
    assert len(list(collection.glob("*.alto.xml"))) == 4  # ALTO met nothing of the curator's: new files
