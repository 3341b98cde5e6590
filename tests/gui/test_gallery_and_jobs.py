"""Gallery filters and virtualisation; the worker helper's progress, cancel and errors; UI stalls."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from sqlalchemy import insert

from engine.errors import MarginaliaError
from engine.jobs import JobProgress
from engine.project import Project
from engine.store.schema import Image
from gui.gallery import GalleryPanel
from gui.workers import JobRunner
from tests.gui.conftest import open_and_wait


def test_status_text_and_category_filters(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    gallery = window.gallery
    names = lambda: [window.gallery.model.row_for(i).display_name for i in gallery.visible_image_ids()]  # noqa: E731
    assert len(names()) == 2
    gallery.status_filter.setCurrentText("Has proposals")
    assert names() == ["bengel_abriss01_1751_0007.jpg"]
    gallery.status_filter.setCurrentText("Unlabelled")
    assert names() == ["kant_aufklaerung_1784_0017.tif"]
    gallery.status_filter.setCurrentText("All pages")
    qtbot.keyClicks(gallery.search, "KANT_auf")
    assert names() == ["kant_aufklaerung_1784_0017.tif"]
    gallery.search.clear()
    gallery.category_filter.setCurrentIndex(gallery.category_filter.findText("Ornament"))
    assert names() == ["bengel_abriss01_1751_0007.jpg"]
    gallery.category_filter.setCurrentIndex(0)
    gallery.sort_order.setCurrentText("File name")
    assert names() == sorted(names(), key=str.casefold)


def test_ten_thousand_pages_load_only_visible_thumbnails(qtbot, tmp_path: Path) -> None:
    with Project.create(tmp_path / "big") as project:
        with project.unit_of_work() as session:
            session.execute(insert(Image), [
                dict(path=f"/archive/box{i // 500:02d}/folio{i:05d}.tif", sha256=f"{i:064x}", width=2000,
                     height=3000, format="TIFF", mode="RGB", file_size=1, file_mtime=0.0, title="",
                     shelfmark=f"Ms. {i}", date="", rights="", notes="", page_index=0, page_count=1)
                for i in range(10_000)])
        from engine.inventory import list_images

        started = time.perf_counter()
        rows = list_images(project)
        listing_s = time.perf_counter() - started
        jobs = JobRunner()
        panel = GalleryPanel(jobs)
        qtbot.addWidget(panel)
        panel.resize(800, 900)
        panel.show()
        qtbot.waitExposed(panel)
        panel.set_rows(rows, project.thumbnail_dir)
        qtbot.wait(200)
        first_screen = panel.model.thumbnail_requests
        panel.view.scrollToBottom()
        qtbot.wait(200)
        jobs.wait(10_000)
    assert panel.proxy.rowCount() == 10_000
    assert 0 < first_screen < 200, "only the rows on screen ask for thumbnails"
    assert panel.model.thumbnail_requests < 400
    assert listing_s < 5


def test_jobs_report_progress_errors_and_cancel(qtbot) -> None:
    runner = JobRunner()
    seen: list[JobProgress] = []

    def counting(progress, cancel) -> int:
        for step in range(1, 6):
            progress(JobProgress(step, 5, f"step {step}"))
        return 42

    results: list[int] = []
    job = runner.submit("Counting", counting, results.append)
    job.progressed.connect(seen.append)
    with qtbot.waitSignal(runner.job_ended, timeout=5000):
        pass
    assert results == [42] and job.outcome == "done"

    with qtbot.waitSignal(runner.failed, timeout=5000) as failure:
        runner.submit("Broken", lambda progress, cancel: (_ for _ in ()).throw(MarginaliaError("The disk is full.")))
    assert failure.args == ["Broken", "The disk is full."]

    with qtbot.waitSignal(runner.failed, timeout=5000) as crash:
        runner.submit("Buggy", lambda progress, cancel: 1 / 0)
    assert crash.args[1].startswith("Unexpected error: ZeroDivisionError")

    def patient(progress, cancel) -> None:
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        waiting = runner.submit("Waiting", patient)
        QTimer.singleShot(50, waiting.cancel)
    assert waiting.outcome == "cancelled"


def test_long_jobs_never_hold_up_a_quick_one(qtbot) -> None:
    """Jobs that wait (on a decoder process, a model) must not queue the page the curator opens behind them,
    however few cores the machine has."""
    runner = JobRunner()
    release = threading.Event()

    def long_wait(progress, cancel) -> None:
        while not release.wait(0.01):
            cancel.raise_if_cancelled()

    long_jobs = [runner.submit(f"Preparing {n}", long_wait, background=True)
                 for n in range(max(2, os.cpu_count() or 2) + 1)]
    quick: list[str] = []
    try:
        runner.submit("Opening the page", lambda progress, cancel: "page", quick.append, visible=False)
        qtbot.waitUntil(lambda: quick == ["page"], timeout=3000)
        assert all(job in runner.running_jobs() for job in long_jobs)
    finally:
        release.set()
        runner.wait(5000)


def test_errors_from_jobs_show_in_a_notification(qtbot, window) -> None:
    with qtbot.waitSignal(window.jobs.job_ended, timeout=5000):
        window.jobs.submit("Export", lambda p, c: (_ for _ in ()).throw(MarginaliaError("Cannot write x.json.")))
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert "Export: Cannot write x.json." in texts
    assert window.isEnabled()  # non-modal: nothing blocks the window


def test_the_ui_thread_never_stalls_during_an_import(qtbot, window, tmp_path: Path, shared_data: Path) -> None:
    Project.create(tmp_path / "imports").close()
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        assert window.open_project(tmp_path / "imports")
    gaps: list[float] = []
    clock = QElapsedTimer()
    heartbeat = QTimer()
    heartbeat.setInterval(5)

    def beat() -> None:
        gaps.append(clock.restart())

    heartbeat.timeout.connect(beat)
    # What earlier tests in this worker left (torch, transformers, models) is not this window's: one full
    # collection over it held the interpreter for 343 ms. The app freezes such objects after a model load.
    gc.freeze()
    clock.start()
    heartbeat.start()
    try:
        with qtbot.waitSignal(window.project_opened, timeout=60_000):
            window.files.import_paths([shared_data])
        qtbot.wait(300)
    finally:
        heartbeat.stop()
        gc.unfreeze()
    window.jobs.wait(10_000)
    assert len(window.gallery.visible_image_ids()) == 13
    worst, usual = max(gaps[1:]), sorted(gaps[1:])[int(0.9 * (len(gaps) - 1))]
    print(f"worst UI stall during import: {worst} ms, 90th percentile {usual} ms over {len(gaps)} beats")
    # No freeze a curator would notice, even on a slow 2-core machine running other work (worst seen
    # there 40-107 ms, the UI thread sampled inside Qt's event loop, not in our code), and a fluid window throughout.
    assert worst < 150, f"the UI thread stalled for {worst} ms"
    assert usual < 25, f"the UI thread was late by {usual} ms at the 90th percentile"


def test_a_file_replaced_in_place_is_flagged_and_not_drawn(qtbot, window, scans_project: Path) -> None:
    from PIL import Image as PILImage

    open_and_wait(qtbot, window, scans_project)
    gallery = window.gallery
    kant = next(i for i in gallery.visible_image_ids() if "kant" in gallery.model.row_for(i).path)
    path = Path(gallery.model.row_for(kant).path)
    PILImage.new("RGB", (640, 480), "white").save(path, "TIFF")  # replaced under the same name
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        window.refresh_gallery()
    gallery.status_filter.setCurrentText("Missing or changed files")
    assert gallery.visible_image_ids() == [kant]
    row = gallery.model.row_for(kant)
    assert row.changed
    gallery.select_image(kant)
    qtbot.waitUntil(lambda: any("replaced or edited" in note.label.text()
                                for note in window.notifications.notifications()), timeout=5000)


def test_an_import_waits_visibly_for_another_process(qtbot, window, scans_project: Path, tmp_path: Path) -> None:
    import sqlite3
    import threading

    from PIL import Image as PILImage

    open_and_wait(qtbot, window, scans_project)
    page = tmp_path / "new-page.png"
    PILImage.new("RGB", (320, 200), "white").save(page)
    holder = sqlite3.connect(scans_project / "project.sqlite", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another Marginalia process, writing
    try:
        window.files.import_paths([page])
        qtbot.waitUntil(lambda: "Waiting for another Marginalia process" in window.status.currentMessage(),
                        timeout=10_000)
    finally:
        threading.Timer(0.5, lambda: (holder.execute("COMMIT"), holder.close())).start()
    qtbot.waitUntil(lambda: len(window.gallery.visible_image_ids()) == 3, timeout=20_000)


def test_the_import_report_stays_lists_every_file_and_saves_as_csv(qtbot, window, scans_project: Path,
                                                                    tmp_path: Path, monkeypatch) -> None:
    import csv

    from PIL import Image as PILImage
    from PySide6.QtGui import QGuiApplication

    from gui import notifications

    monkeypatch.setattr(notifications, "_INFO_SECONDS", 1)  # passing notifications go after a second here
    open_and_wait(qtbot, window, scans_project)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    PILImage.new("RGB", (300, 200), "white").save(incoming / "new.png")
    (incoming / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (incoming / "notes.txt").write_text("shelf list")
    existing = next(iter((tmp_path / "scans").iterdir()))
    (incoming / "again.jpg").write_bytes(existing.read_bytes())
    window.files.import_paths([incoming])
    qtbot.waitUntil(lambda: window.files.report_dialog is not None and window.files.report_dialog.isVisible(),
                    timeout=20_000)
    dialog = window.files.report_dialog
    table = {dialog.table.item(r, 1).text().rsplit("/", 1)[-1]: (dialog.table.item(r, 0).text(),
                                                                 dialog.table.item(r, 2).text())
             for r in range(dialog.table.rowCount())}
    assert table["new.png"][0] == "imported"
    assert table["broken.jpg"][0] == "failed" and table["broken.jpg"][1]
    assert table["notes.txt"][0] == "ignored"
    assert table["again.jpg"][0] == "duplicate" and existing.name in table["again.jpg"][1]
    qtbot.wait(1500)  # longer than any passing notification (1 s here)
    assert dialog.isVisible()  # the report stays
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert "broken.jpg" in QGuiApplication.clipboard().text()
    out = tmp_path / "report.csv"
    dialog.save_csv(out)
    with out.open(encoding="utf-8-sig") as stream:
        rows = list(csv.DictReader(stream))
    assert {Path(row["file"]).name: row["outcome"] for row in rows}["again.jpg"] == "duplicate"


def test_file_dialogs_start_in_the_last_folder_used_else_pictures(tmp_path: Path) -> None:
    from gui.settings import AppSettings

    settings = AppSettings(tmp_path / "settings.ini")
    start = settings.start_folder("scans")
    assert start.is_dir() and start != Path.cwd()  # never the program's own folder
    settings.remember_folder("scans", tmp_path)
    assert AppSettings(tmp_path / "settings.ini").start_folder("scans") == tmp_path
    settings.remember_folder("coco", tmp_path / "gone")
    assert settings.start_folder("coco") != tmp_path / "gone"  # a folder that went away is not offered


def test_empty_states_say_why_and_offer_the_next_step(qtbot, window, scans_project: Path, tmp_path: Path,
                                                      monkeypatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    from gui.gallery import caption

    open_and_wait(qtbot, window, scans_project)
    gallery = window.gallery
    qtbot.keyClicks(gallery.search, "no page is called this")
    assert gallery.pages.currentWidget() is gallery.empty and "No page matches" in gallery.empty.message.text()
    qtbot.mouseClick(gallery.empty.button, Qt.MouseButton.LeftButton)
    assert gallery.search.text() == "" and len(gallery.visible_image_ids()) == 2
    assert gallery.pages.currentWidget() is gallery.view

    with Project.create(tmp_path / "empty") as _:
        pass
    assert window.open_project(tmp_path / "empty")
    qtbot.waitUntil(lambda: gallery.pages.currentWidget() is gallery.empty, timeout=10_000)
    assert "no pages yet" in gallery.empty.message.text() and gallery.empty.button.text() == "Import Scans…"
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: asked.append("folder") or "")
    qtbot.mouseClick(gallery.empty.button, Qt.MouseButton.LeftButton)
    assert asked == ["folder"]
    from engine.inventory import ImageRow  # captions: a title alone would make pages of one work look alike

    page = ImageRow(id=1, path="/b/kant_aufklaerung_1784_0017.tif", page_index=0, page_count=1, width=1, height=1,
                    format="TIFF", title="Was ist Aufklärung?", shelfmark="", date="", notes="", sha256="0" * 64,
                    accepted=0, proposed=0, rejected=0, missing=False)
    assert caption(page) == "Was ist Aufklärung? — kant_aufklaerung_1784_0017.tif"


def test_quitting_with_a_job_running_asks_and_then_stops_within_a_second(qtbot, scans_project: Path,
                                                                         monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    window = MainWindow(AppSettings(), "Test Curator")
    window.confirm_quit = True  # as the app sets it for a person at the screen
    qtbot.addWidget(window)
    window.show()
    open_and_wait(qtbot, window, scans_project)

    def slow(progress, cancel) -> None:  # noqa: ANN001 - an engine job: checks its token between steps
        for step in range(600):
            cancel.raise_if_cancelled()
            progress(JobProgress(step, 600, "working"))
            time.sleep(0.05)

    window.jobs.submit("Indexing the collection", slow, background=True)
    window.jobs.submit("Preparing the page for SAM", slow)
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *rest: asked.append(text)
                        or answers.pop(0))
    window.close()
    assert window.isVisible() and "Indexing the collection" in asked[0]  # No: nothing happens
    timer = QElapsedTimer()
    timer.start()
    window.close()
    from PySide6.QtCore import QThreadPool

    assert not window.isVisible() and QThreadPool.globalInstance().activeThreadCount() == 0  # all stopped
    assert window.jobs.wait(0)  # the background jobs' pool as well
    assert timer.elapsed() < 1000


def test_the_cancel_button_stops_a_job_within_a_second(qtbot, window) -> None:
    def slow(progress, cancel) -> None:  # noqa: ANN001 - checks its token between steps, as engine jobs do
        for step in range(600):
            cancel.raise_if_cancelled()
            progress(JobProgress(step, 600, f"page {step + 1} of 600"))
            time.sleep(0.1)

    job = window.jobs.submit("Preparing pages", slow)
    indicator = window.status.jobs
    qtbot.waitUntil(indicator.isVisible, timeout=5000)
    timer = QElapsedTimer()
    timer.start()
    with qtbot.waitSignal(job.ended, timeout=1000):
        qtbot.mouseClick(indicator.cancel_button, Qt.MouseButton.LeftButton)
    assert timer.elapsed() < 1000 and job.outcome == "cancelled"


def test_opening_and_upgrading_a_project_happens_off_the_ui_thread(qtbot, window, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import threading

    from PySide6.QtWidgets import QProgressDialog

    from engine import project as project_module
    from tests.test_store import FIXTURE_V1

    folder = tmp_path / "old-project"
    folder.mkdir()
    shutil.copy(FIXTURE_V1, folder / "project.sqlite")
    opened_on: list[threading.Thread] = []
    real_open = project_module.Project.open.__func__

    def slow_open(cls, *args, **kwargs):
        opened_on.append(threading.current_thread())
        threading.Event().wait(0.6)  # an upgrade that takes a while
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(project_module.Project, "open", classmethod(slow_open))
    with qtbot.waitSignal(window.project_opened, timeout=20_000):
        assert window.open_project(folder)
        qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(QProgressDialog)), timeout=2_000)
        dialog = next(d for d in window.findChildren(QProgressDialog) if d.isVisible())
        assert "Opening old-project" in dialog.labelText() and dialog.maximum() == 0  # busy, never frozen
    assert opened_on and opened_on[0] is not threading.main_thread()
    assert window.project is not None and window.project.name == "Version 1 project — Ælfric"
    assert not any(d.isVisible() for d in window.findChildren(QProgressDialog))

    window.close_project()
    (tmp_path / "not-a-project").mkdir()
    assert window.open_project(tmp_path / "not-a-project")
    qtbot.waitUntil(lambda: any("not-a-project" in n.label.text() for n in window.notifications.notifications()),
                    timeout=10_000)
    assert window.project is None
