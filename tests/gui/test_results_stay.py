"""What came of the curator's own request stays until read (issue 27, 8 and 13): news fades, results do not,
a clean import offers its report, and another project starts with no notes of the last one."""

from __future__ import annotations

from pathlib import Path

import samples
from engine.project import Project


def test_results_stay_news_fades_and_a_clean_import_offers_its_report(qtbot, window, tmp_path: Path,
                                                                      monkeypatch) -> None:
    monkeypatch.setattr("gui.notifications._INFO_SECONDS", 0.2)
    Project.create(tmp_path / "project").close()
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        window.open_project(tmp_path / "project")
    (tmp_path / "scans").mkdir()
    samples.write_png(tmp_path / "scans" / "folio.png")
    window.notifications.info("news")
    window.files.import_paths([tmp_path / "scans"])
    window.jobs.wait(20_000)
    qtbot.wait(400)  # past the fading time
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert "news" not in texts
    (imported,) = [note for note in window.notifications.notifications()
                   if "1 file(s) imported" in note.label.text()]
    (show,) = [button for button in imported.buttons if button.text() == "Show report"]
    show.click()
    assert window.files.report_dialog is not None and window.files.report_dialog.isVisible()
    window.files.report_dialog.close()
    Project.create(tmp_path / "other").close()
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        window.open_project(tmp_path / "other")
    assert window.notifications.notifications() == []  # nothing said of the previous project remains


def test_the_first_question_names_the_application_and_says_why_it_asks(qtbot) -> None:
    """Issue 27, 13: the first thing a new curator saw was a bare "Your name" box."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog

    from gui.dialogs import ask_curator_name

    seen: list[tuple[str, str]] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QInputDialog)
        seen.append((dialog.windowTitle(), dialog.labelText()))
        dialog.setTextValue("Ada Lovelace")
        dialog.accept()

    QTimer.singleShot(100, answer)
    assert ask_curator_name(None) == "Ada Lovelace"
    title, text = seen[0]
    assert "Marginalia" in title and "who did what" in text
