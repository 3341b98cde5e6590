"""Render the app in a few states to PNGs, for the docs and for reviews.

    make screenshots            (writes docs/screenshots/*.png)

Uses the demo project, built in a temporary data folder, and drives the real
main window offscreen.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def _wait(signal, timeout_ms: int = 30_000) -> None:  # noqa: ANN001
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def _settle(ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _main_window_sizes(window, out: Path) -> None:  # noqa: ANN001
    """The main window at a laptop's 1280×720 and at 1920×1080, with search results and the Annotations table.

    Search runs on the test kit's tiny CLIP (random weights): the results' order means nothing, the layout is
    what is shown.
    """
    from engine.models.store import ModelStore
    from tests.modelkit.tiny import tiny_spec, write_tiny

    os.environ["MARGINALIA_DEVICE"] = "cpu"
    models = Path(os.environ["MARGINALIA_DATA_DIR"]) / "models"
    os.environ["MARGINALIA_MODELS"] = str(models)
    ModelStore().import_files(tiny_spec("clip-vit-b-32"), [write_tiny("clip-vit-b-32", models.parent / "tiny")])
    window.reset_model_service()
    window.gallery.status_filter.setCurrentText("All pages")
    window.canvas.set_tool("select")
    window.tools["search"].panel.index_project()
    _wait(window.jobs.job_ended, 120_000)
    window.docks["search"].raise_()
    window.tools["search"].panel.query.setText("a decorated initial")
    window.tools["search"].panel.search()
    _wait(window.tools["search"].panel.results_shown, 60_000)
    bengel = next(r.id for r in window.gallery.model.rows() if r.proposed)
    window.gallery.select_image(bengel)
    _wait(window.page_ready)
    for width, height in ((1280, 720), (1920, 1080)):
        window.resize(width, height)
        _settle(300)
        window.canvas.fit()
        _settle(300)
        window.grab().save(str(out / f"main-window-{width}x{height}.png"))


def _find_by_description(window, out: Path) -> None:  # noqa: ANN001
    """The Find by description tool after a run on the demo's first page, at a laptop's 1366×768.

    The tiny Grounding DINO of the test kit (random weights): where its boxes fall means nothing; the tool,
    its options and proposals on the page are what is shown.
    """
    from engine.models.store import ModelStore
    from tests.modelkit.tiny import tiny_spec, write_tiny

    ModelStore().import_files(tiny_spec("grounding-dino-tiny"),
                              [write_tiny("grounding-dino-tiny", Path(os.environ["MARGINALIA_DATA_DIR"]) / "tiny-gd")])
    window.reset_model_service()
    window.resize(1366, 768)
    find = window.tools["find"].controller
    window.canvas.set_tool("find")
    find.options.phrases.setText("decorated initial = Initial; coat of arms")
    find.options.tiling.setCurrentIndex(find.options.tiling.findData("off"))
    find.options.box.setValue(95)
    find.run()
    _wait(window.jobs.job_ended, 120_000)
    _settle(1500)
    window.canvas.fit()
    _settle(500)
    window.grab().save(str(out / "find-by-description.png"))


def _review_at_scale(window, out: Path, workspace: Path) -> None:  # noqa: ANN001
    """The review queue on the demo's proposals, and a page holding 3,000 annotations (from the bench)."""
    window.resize(1366, 768)
    window.gallery.status_filter.setCurrentText("All pages")
    window.review.start()
    _wait(window.review.moved, 30_000)
    _settle(600)
    window.grab().save(str(out / "review-queue.png"))
    window.review.stop()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from annotations_scale import SCANS, _build_project, _shared

    scans = workspace / "dense-scans"
    scans.mkdir()
    for name in SCANS:
        (scans / name).write_bytes((_shared() / name).read_bytes())
    page_id = _build_project(workspace / "dense", scans, 3000)
    window.open_project(workspace / "dense")
    _wait(window.project_opened)
    if window.labelling.image_id != page_id:
        window.gallery.select_image(page_id)
        _wait(window.page_ready, 60_000)
    window.canvas.fit()
    _settle(1500)
    window.grab().save(str(out / "dense-page-3000-annotations.png"))


def _text_hierarchy(window, out: Path, workspace: Path) -> None:  # noqa: ANN001
    """A Fraktur page with its paragraphs, lines and words (the shared Kant page's PAGE ground truth,
    imported), the Text dock's tree with a line chosen and its words lit, at a laptop's 1366×768."""
    from engine.ingest.scan_import import import_scans
    from engine.layout.files import import_layout_files
    from engine.project import Project

    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "manuscripts"
    scans = workspace / "kant-scans"
    scans.mkdir()
    (scans / "kant_aufklaerung_1784_0017.tif").write_bytes((shared / "kant_aufklaerung_1784_0017.tif").read_bytes())
    with Project.create(workspace / "kant", name="Kant, Was ist Aufklärung?") as project:
        import_scans(project, [scans])
        import_layout_files(project, [shared / "kant_aufklaerung_1784_0017.page.xml"], "page")
    window.resize(1366, 768)
    window.open_project(workspace / "kant")
    _wait(window.page_ready, 60_000)
    window.canvas.set_tool("text")
    window.docks["text"].raise_()
    _settle(800)
    panel = window.tools["text"].controller.panel
    for _ in range(100):  # the tree fills once the page's shapes are read
        if panel.tree.topLevelItemCount() > 5:
            break
        _settle(100)
    paragraph = max((panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())),
                    key=lambda item: item.childCount())
    paragraph.setExpanded(True)
    line = paragraph.child(2)
    line.setExpanded(True)
    panel.tree.setCurrentItem(line)
    line.setSelected(True)
    _settle(600)
    window.canvas.fit()
    _settle(800)
    window.grab().save(str(out / "text-hierarchy.png"))


def _attention(window, out: Path, workspace: Path) -> None:  # noqa: ANN001
    """The Attention layer on a painting and on a manuscript page, at 1366×768. The test kit's tiny DINO
    (random weights): where it looks means nothing; the layer, its outline, options and legend are shown."""
    from engine.ingest.scan_import import import_scans
    from engine.models.store import ModelStore
    from engine.project import Project
    from tests.modelkit.tiny import tiny_spec, write_tiny

    ModelStore().import_files(tiny_spec("dino-vits8"), [write_tiny("dino-vits8", workspace / "tiny-dino")])
    window.reset_model_service()
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    scans = workspace / "attention-scans"
    scans.mkdir()
    for source in (shared / "artworks" / "van_gogh_starry_night_1889.jpg",
                   shared / "manuscripts" / "bengel_abriss01_1751_0007.jpg"):
        (scans / source.name).write_bytes(source.read_bytes())
    with Project.create(workspace / "attention", name="What stands out") as project:
        import_scans(project, [scans])
    window.resize(1366, 768)
    window.open_project(workspace / "attention")
    _wait(window.page_ready, 60_000)
    tool = window.tools["attention"].controller
    window.canvas.set_tool("attention")
    for name, scan in (("attention-painting.png", "van_gogh"), ("attention-manuscript.png", "bengel")):
        page = next(row.id for row in window.gallery.model.rows() if Path(row.path).name.startswith(scan))
        if window.labelling.image_id != page:
            window.gallery.select_image(page)
            _wait(window.page_ready, 60_000)
        if not tool.options.show_map.isChecked():
            tool.options.show_map.setChecked(True)
        _wait(window.jobs.job_ended, 120_000)
        _settle(800)
        window.canvas.fit()
        _settle(500)
        window.grab().save(str(out / name))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["MARGINALIA_DATA_DIR"] = data_dir
        from engine.demo import open_demo_project
        from gui.main_window import MainWindow
        from gui.settings import AppSettings

        app = QApplication.instance() or QApplication([])
        open_demo_project().close()
        window = MainWindow(AppSettings(), "Ada Curator")
        window.resize(1440, 900)
        window.show()
        folder = Path(data_dir) / "demo-project"
        window.open_project(folder)
        _wait(window.page_ready)
        _settle()

        window.resizeDocks([window.docks["gallery"]], [900], Qt.Orientation.Horizontal)
        _settle()
        window.grab().save(str(out / "gallery.png"))

        window.resizeDocks([window.docks["gallery"]], [330], Qt.Orientation.Horizontal)
        kant = next(r.id for r in window.gallery.model.rows() if r.format == "JPEG2000")
        window.gallery.select_image(kant)
        _wait(window.page_ready)
        records = window.labelling.records()
        window.canvas.select_annotations([records[1].id])
        _settle()
        window.grab().save(str(out / "canvas-annotations.png"))

        window.gallery.status_filter.setCurrentText("Has proposals")
        bengel = window.gallery.visible_image_ids()[0]
        window.gallery.select_image(bengel)
        _wait(window.page_ready)
        proposal = next(r.id for r in window.labelling.records() if r.status.value == "proposed")
        window.canvas.select_annotations([proposal])
        _settle()
        window.grab().save(str(out / "review-proposals.png"))

        window.canvas.set_tool("polygon")
        window.canvas.set_zoom(0.6)
        _settle()
        window.grab().save(str(out / "polygon-tool-zoomed.png"))
        from gui.model_hint import hint_for_missing_model, show_models

        models = show_models(window)
        if "Looking" in models.devices_found.text():
            _wait(window.jobs.job_ended)
        models.select("sam-vit-b")
        _settle()
        models.grab().save(str(out / "models-dialog.png"))
        models.close()
        hint = hint_for_missing_model(window, models.store, "sam-vit-b", "The SAM tool", lambda model_id: None)
        _settle()
        assert hint is not None
        hint.grab().save(str(out / "model-needed-hint.png"))
        hint.close()
        _main_window_sizes(window, out)
        _find_by_description(window, out)
        _review_at_scale(window, out, Path(data_dir))
        _text_hierarchy(window, out, Path(data_dir))
        _attention(window, out, Path(data_dir))
        window.close()
        app.processEvents()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
