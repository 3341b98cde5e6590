import time
from pathlib import Path
from PySide6.QtCore import QElapsedTimer, QTimer
from engine.project import Project
from engine.ingest.scan_import import import_scans
from tests.gui.conftest import open_and_wait

def test_dbg(qtbot, window, tmp_path, shared_data):
    Project.create(tmp_path / "imports").close()
    assert window.open_project(tmp_path / "imports")
    qtbot.wait(500)
    gaps = []
    clock = QElapsedTimer(); t0 = time.perf_counter()
    hb = QTimer(); hb.setInterval(5)
    hb.timeout.connect(lambda: gaps.append((round(time.perf_counter()-t0,3), clock.restart())))
    clock.start(); hb.start()
    with qtbot.waitSignal(window.jobs.job_ended, timeout=60000):
        window.jobs.submit("imp", lambda p, c: import_scans(window.project, [shared_data], progress=p, cancel=c))
    t1 = time.perf_counter()-t0
    qtbot.wait(100)
    with qtbot.waitSignal(window.project_opened, timeout=60000):
        window.refresh_gallery()
    t2 = time.perf_counter()-t0
    qtbot.wait(1500)
    hb.stop()
    print("import done at", t1, "gallery at", t2)
    print(sorted(gaps, key=lambda g: -g[1])[:10])
