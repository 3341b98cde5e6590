"""The window says in plain words that a project's database is damaged, and where its good copy is."""

from __future__ import annotations

from pathlib import Path

from damaged_db import flip_a_page, project_with_work


def test_opening_a_damaged_project_names_the_damage_and_the_copy(qtbot, window, tmp_path: Path) -> None:
    folder = project_with_work(tmp_path / "project", tmp_path / "scans")
    flip_a_page(folder / "project.sqlite")
    window.open_project(folder)
    window.jobs.wait(20_000)

    def said() -> list[str]:
        return [note.label.text() for note in window.notifications.notifications() if "damaged" in note.label.text()]

    qtbot.waitUntil(lambda: bool(said()) or window.project is not None, timeout=10_000)
    if window.project is not None:  # the damaged pages were not met on opening: the first import meets them
        window.files.import_paths([tmp_path / "scans"])
        window.jobs.wait(20_000)
        qtbot.waitUntil(lambda: bool(said()), timeout=10_000)
    (text,) = said()[:1]
    assert "project.sqlite.backup" in text and "SELECT" not in text and "[SQL" not in text
