"""Categories panel edits, shape moves and vertex deletion, File-menu COCO export, shortcuts list."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from sqlalchemy import select

from engine.project import Project
from engine.store.schema import Annotation, Category
from gui.dialogs import ShortcutsDialog
from tests.gui.conftest import open_and_wait


def _rows(folder: Path, model):
    with Project.open(folder) as project, project.unit_of_work() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def _vp(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def test_rename_merge_and_undo_in_the_categories_panel(qtbot, window, scans_project: Path) -> None:
    from gui.commands import RemoveCategory, UpdateCategory

    open_and_wait(qtbot, window, scans_project)
    panel = window.categories
    records = {r.name: r for r in panel.records()}
    window.undo_stack.push(UpdateCategory(window.labelling.ctx, records["Ornament"].id, name="Zierleiste"))
    assert "Zierleiste" in [c.name for c in _rows(scans_project, Category)]
    assert any("Zierleiste" in panel.tree.topLevelItem(i).child(j).text(0)
               for i in range(panel.tree.topLevelItemCount())
               for j in range(panel.tree.topLevelItem(i).childCount()))
    heading, initial = records["Heading"], records["Decorated initial"]
    window.undo_stack.push(RemoveCategory(window.labelling.ctx, heading, initial))
    names = [c.name for c in _rows(scans_project, Category)]
    assert "Heading" not in names
    assert all(a.category_id != heading.id for a in _rows(scans_project, Annotation))
    window.undo_stack.undo()
    assert any(a.category_id == heading.id for a in _rows(scans_project, Annotation))
    window.undo_stack.push(RemoveCategory(window.labelling.ctx, initial, None))  # still in use
    assert "Decorated initial" in [c.name for c in _rows(scans_project, Category)]
    messages = [n.label.text() for n in window.notifications.notifications()]
    assert any("merge it into another category" in m for m in messages)
    # The refused delete left no undo step (pushing it dropped the undone merge, as any edit does).
    assert window.undo_stack.count() == 1 and window.undo_stack.text(0) == "Rename category"


def test_moving_a_shape_and_deleting_a_vertex(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    for x, y in [(300, 300), (700, 300), (700, 700), (500, 800), (300, 700)]:
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_vp(window, x, y))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    qtbot.keyClick(window.canvas, Qt.Key.Key_V)
    shape = _rows(scans_project, Annotation)[-1]
    window.canvas.select_annotations([])
    viewport = window.canvas.viewport()
    start, end = _vp(window, 500, 500), _vp(window, 600, 550)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, _vp(window, 550, 520))
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    moved = _rows(scans_project, Annotation)[-1]
    dx = moved.polygons[0]["exterior"][0] - shape.polygons[0]["exterior"][0]
    expected = window.canvas.mapToScene(end).x() - window.canvas.mapToScene(start).x()
    assert abs(dx - expected) < 0.5 and moved.area == shape.area
    window.canvas.select_annotations([moved.id])
    vertex = moved.polygons[0]["exterior"][6:8]
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     _vp(window, *vertex))
    reduced = _rows(scans_project, Annotation)[-1]
    assert len(reduced.polygons[0]["exterior"]) == 8
    assert vertex not in [reduced.polygons[0]["exterior"][i:i + 2] for i in range(0, 8, 2)]


def test_export_from_the_file_menu_runs_in_the_background(qtbot, window, scans_project: Path, tmp_path: Path) -> None:
    from PySide6.QtCore import QTimer

    from gui.export_dialog import ExportDialog

    open_and_wait(qtbot, window, scans_project)
    out = tmp_path / "out" / "export.json"
    out.parent.mkdir()

    def fill_in() -> None:
        dialog = window.files.export_dialog
        assert isinstance(dialog, ExportDialog)
        assert Path(dialog.root_edit.text()) == tmp_path / "scans"  # the pages' common folder
        dialog.file_edit.selectAll()
        qtbot.keyClicks(dialog.file_edit, str(out))
        qtbot.mouseClick(dialog.with_images, Qt.MouseButton.LeftButton, pos=QPoint(8, dialog.with_images.height() // 2))
        assert not dialog.root_edit.isEnabled()
        qtbot.keyClick(dialog.file_edit, Qt.Key.Key_Return)

    QTimer.singleShot(200, fill_in)
    window.files.ask_export_coco(include_proposals=True)
    qtbot.waitUntil(lambda: any("Exported 3 annotation(s)" in n.label.text()
                                for n in window.notifications.notifications()), timeout=20_000)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data["annotations"]) == 3
    for entry in data["images"]:
        assert entry["file_name"].startswith("images/") and (out.parent / entry["file_name"]).is_file()


def test_the_shortcuts_list_comes_from_the_menus(qtbot, window, scans_project: Path) -> None:
    from PySide6.QtWidgets import QApplication

    open_and_wait(qtbot, window, scans_project)
    window.actions_by_name["shortcuts"].trigger()
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ShortcutsDialog))
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert rows["Accept Proposal"] == "A"
    assert rows["Accept All on This Page"] == "Shift+A"
    assert rows["Box"] == "B"
    assert "Redo" not in rows["Redo"].split(", ") and "Ctrl+Y" in rows["Redo"]  # keys, not a key named Redo
    names = [window.categories.by_hotkey(n).name for n in range(1, 10) if window.categories.by_hotkey(n)]
    assert rows[f"Set category: {names[0]}"] == "1"
    assert not any(name.startswith("Category ") for name in rows)
    from PySide6.QtWidgets import QLabel

    help_text = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "wheel zooms" in help_text and "nothing" not in help_text
    dialog.close()


def test_a_read_only_project_opens_with_a_banner(qtbot, window, scans_project, monkeypatch) -> None:
    import os

    import engine.project as project_module
    from tests.gui.conftest import open_and_wait

    monkeypatch.setattr(project_module.os, "access", lambda path, mode: mode != os.W_OK)
    open_and_wait(qtbot, window, scans_project)
    assert window.project is not None and window.project.read_only
    assert "(read-only)" in window.windowTitle()
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert any(text.startswith("Read-only:") for text in texts), texts
    assert window.gallery.visible_image_ids()  # browsing works


def test_the_window_fits_a_laptop_screen_with_the_key_columns_showing(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720 - 40  # 1280×720 less a title bar
    window.resize(1280, 680)
    qtbot.waitUntil(lambda: window.width() == 1280)
    tree = window.annotations.table
    assert window.annotations.width() < 400
    assert tree.isColumnHidden(3) and tree.isColumnHidden(5)  # source and creator give way (in tooltips)
    shown = [column for column in range(tree.model().columnCount()) if not tree.isColumnHidden(column)]
    assert sum(tree.columnWidth(column) for column in shown) <= tree.viewport().width() + 1  # nothing scrolls
    assert tree.columnWidth(1) >= 90  # the category name has room
    window.docks["search"].raise_()
    assert window.tools["search"].panel.results.height() > 250  # results get the column's height, not a strip
    assert window.screen().availableGeometry().height() < 900  # the offscreen screen is a small one
    assert set(window.tabifiedDockWidgets(window.docks["annotations"])) == {window.docks["metadata"],
                                                                             window.docks["text"]}
    assert window.annotations.table.viewport().height() > 110  # five rows and more for review, not two


def test_a_dock_the_curator_closed_stays_closed_when_a_project_opens(qtbot, window, scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    window.docks["metadata"].close()
    window.close_project()
    assert not any(dock.isVisible() for dock in window.docks.values())  # the welcome page has no docks
    open_and_wait(qtbot, window, scans_project)
    assert window.docks["annotations"].isVisible() and not window.docks["metadata"].isVisible()


def test_a_long_status_message_is_shortened_before_the_tool_label(qtbot, window) -> None:
    """Issue 27, 13: a passing message no longer runs into the tool label; the whole of it stays readable
    (tooltip, and what the app asks for)."""
    from PySide6.QtWidgets import QStatusBar

    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    long_message = "Find text: 0 paragraphs on 1 page; " + "every word of this message matters " * 12
    window.status.showMessage(long_message, 5_000)
    shown = QStatusBar.currentMessage(window.status)  # what Qt draws
    assert window.status.currentMessage() == long_message and window.status.toolTip() == long_message
    assert shown.endswith("…") and len(shown) < len(long_message)
    room = min(label.geometry().left() for label in (window.status.tool_label, window.status.zoom_label)
               if label.isVisible())
    assert window.status.fontMetrics().horizontalAdvance(shown) < room
    window.status.showMessage("Saved.", 5_000)
    assert QStatusBar.currentMessage(window.status) == "Saved." and window.status.toolTip() == ""


def test_closing_says_what_it_does_at_once(qtbot, window, scans_project: Path, monkeypatch) -> None:
    """Issue 27, 13: quitting took seconds with no sign; the status bar says it is closing before the
    project is closed, and the window is gone before background work is waited for."""
    open_and_wait(qtbot, window, scans_project)
    seen: list[tuple[str, bool]] = []
    closing = window.close_project

    def close_project() -> None:
        seen.append((window.status.currentMessage(), window.isVisible()))
        closing()

    waiting = window.jobs.wait
    monkeypatch.setattr(window, "close_project", close_project)
    monkeypatch.setattr(window.jobs, "wait", lambda *args: seen.append(("wait", window.isVisible())) or waiting(*args))
    window.close()
    assert seen[0][0].startswith("Closing") and seen[0][1]  # said while still on screen
    assert ("wait", False) in seen  # then out of the way while background work stops


def test_the_tab_in_front_of_tabbed_docks_comes_back(qtbot, window, scans_project: Path) -> None:
    """Issue 27, 13: the right dock's tab (Annotations or Page metadata) is the one the curator left in front."""
    from PySide6.QtWidgets import QTabBar

    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from tests.gui.conftest import CURATOR

    def in_front(main: MainWindow) -> set[str]:
        return {bar.tabText(bar.currentIndex()) for bar in main.findChildren(QTabBar) if bar.parent() is main}

    open_and_wait(qtbot, window, scans_project)
    window.tabifyDockWidget(window.docks["annotations"], window.docks["metadata"])
    window.docks["metadata"].raise_()
    metadata_title = window.docks["metadata"].windowTitle()
    assert metadata_title in in_front(window)
    window.close()
    reopened = MainWindow(AppSettings(), CURATOR)
    qtbot.addWidget(reopened)
    reopened.show()
    open_and_wait(qtbot, reopened, scans_project)
    assert metadata_title in in_front(reopened)
    assert window.docks["annotations"].windowTitle() not in in_front(reopened)
    reopened.close()


def test_a_label_short_of_room_ends_with_an_ellipsis_and_keeps_its_text(qtbot) -> None:
    """Issue 27, 13: the attention legend was cut mid-word at 1366 px."""
    from gui.elided_label import ElidedLabel

    label = ElidedLabel()
    qtbot.addWidget(label)
    label.setText("DINO ViT-S/8 · mean of heads · brighter: where the model looks")
    label.resize(90, 20)
    label.show()
    assert label.shown_text().endswith("…") and len(label.shown_text()) < len(label.text())
    assert label.toolTip() == label.text()
    label.resize(label.fontMetrics().horizontalAdvance(label.text()) + 20, 20)
    assert label.shown_text() == label.text()
