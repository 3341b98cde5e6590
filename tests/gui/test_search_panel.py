"""The Search panel with the tiny CLIP of the test kit: index, search by typing, open a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QLineEdit
from sqlalchemy import select

from engine.models.store import ModelStore
from engine.project import Project
from engine.store.schema import Annotation
from gui.gallery import IMAGE_ID_ROLE
from tests.gui.conftest import open_and_wait
from tests.modelkit.tiny import tiny_spec


def test_index_search_and_open_a_result(qtbot, window, scans_project: Path, tiny_models,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    ModelStore().import_files(tiny_spec("clip-vit-b-32"), [tiny_models("clip-vit-b-32")])
    open_and_wait(qtbot, window, scans_project)
    panel = window.tools["search"].panel
    qtbot.mouseClick(panel.index_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Indexed with" in panel.summary.text(), timeout=60_000)
    assert "2 page(s) now" in panel.summary.text()
    qtbot.keyClicks(panel.query, "a decorated initial")
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        qtbot.keyClick(panel.query, Qt.Key.Key_Return)
    hits = [panel.results.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.results.count())]
    regions = [hit for hit in hits if hit[1] is not None]
    assert len(hits) - len(regions) == 2 and regions  # both pages, and the accepted regions rank too
    assert f"{len(hits)} result(s)" in panel.summary.text()
    second = next(panel.results.item(i) for i, hit in enumerate(hits) if hit[1] is None and i > 0) if \
        hits[0][1] is None else next(panel.results.item(i) for i, hit in enumerate(hits) if hit[1] is None)
    image_id, _ = second.data(Qt.ItemDataRole.UserRole)
    rect = panel.results.visualItemRect(second)
    qtbot.mouseClick(panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.labelling.image_id == image_id
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        window.actions_by_name["similar-page"].trigger()
    assert panel.results.count() == 1 and panel.results.item(0).data(Qt.ItemDataRole.UserRole)[0] != image_id
    example = scans_project.parent / "scans" / "kant_aufklaerung_1784_0017.tif"
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        panel.find_similar_to_file(example)  # what "By example…" does with the file the curator picked
    best = window.gallery.model.row_for(panel.results.item(0).data(Qt.ItemDataRole.UserRole)[0])
    assert panel.results.count() == 2 and best.path.endswith(example.name)
    assert "pages like kant_aufklaerung_1784_0017.tif" in panel.summary.text()


def _right_click(qtbot, view, position: QPoint):
    """A real right-click; the view answers with its context menu (shown without blocking)."""
    panel = view.parent()
    while not hasattr(panel, "context_menu"):  # the panel that owns the view's menu
        panel = panel.parent()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.RightButton, pos=position)
    if not panel.context_menu or not panel.context_menu.isVisible():
        # QTest's clicks bypass the window system, which is what turns a right-click into a context-menu
        # event on most platforms: send that event as it would.
        QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, position,
                                                                     view.viewport().mapToGlobal(position)))
    menu = panel.context_menu
    assert menu is not None and menu.isVisible()
    return menu


def _choose(menu, text: str) -> None:
    action = next(action for action in menu.actions() if action.text() == text)
    assert action.isEnabled()
    window = menu.parentWidget().window()
    action.trigger()
    menu.close()
    window.activateWindow()  # the offscreen platform does not give activation back after a popup


@pytest.fixture
def clip_installed(tiny_models, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    ModelStore().import_files(tiny_spec("clip-vit-b-32"), [tiny_models("clip-vit-b-32")])


def test_coverage_line_and_find_similar_from_the_gallery_and_annotations(qtbot, window, scans_project: Path,
                                                                       clip_installed) -> None:
    open_and_wait(qtbot, window, scans_project)
    panel = window.tools["search"].panel
    qtbot.waitUntil(lambda: "None of the 2 page(s) is indexed" in panel.coverage.text(), timeout=10_000)
    qtbot.mouseClick(panel.index_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "All 2 page(s) and" in panel.coverage.text(), timeout=60_000)
    regions = [record for record in window.labelling.records() if record.status.value == "accepted"]
    assert f"and {len(regions)} region(s) indexed" in panel.coverage.text()  # the curators' regions too

    gallery = window.gallery
    first_id, second = gallery.proxy.index(0, 0).data(IMAGE_ID_ROLE), gallery.proxy.index(1, 0)
    second_id = second.data(IMAGE_ID_ROLE)
    menu = _right_click(qtbot, gallery.view, gallery.view.visualRect(second).center())
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        _choose(menu, "Find Pages Like This One")
    assert "pages like this one" in panel.summary.text()
    assert [panel.results.item(i).data(Qt.ItemDataRole.UserRole)[0] for i in range(panel.results.count())] == \
        [first_id]  # the other page, not the one right-clicked
    if window.labelling.image_id != first_id:  # right-clicking a thumbnail may have opened it
        window.canvas.setFocus()
        with qtbot.waitSignal(window.page_ready, timeout=30_000):
            qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    assert window.labelling.image_id == first_id

    table = window.annotations.table
    row = table.model().index(0, 0)
    clicked = int(row.data())
    menu = _right_click(qtbot, table, table.visualRect(row).center())
    assert window.annotations.selected_ids() == [clicked]  # right-click chose the row
    with qtbot.waitSignal(panel.results_shown, timeout=30_000):
        _choose(menu, "Find Regions Like This One")
    hits = [panel.results.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.results.count())]
    region_hits = [(position, hit) for position, hit in enumerate(hits) if hit[1] is not None]
    assert region_hits and all(hit[1] != clicked for _, hit in region_hits)
    assert any(hit[1] is None for hit in hits)  # pages are found as well as regions

    window.canvas.setFocus()
    with qtbot.waitSignal(window.page_ready, timeout=30_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)  # away to the other page, then back via a result
    assert window.labelling.image_id == second_id
    position, (image_id, annotation_id) = region_hits[0]
    rect = panel.results.visualItemRect(panel.results.item(position))
    qtbot.mouseClick(panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.labelling.image_id == image_id != second_id
    qtbot.waitUntil(lambda: window.labelling.selected() == [annotation_id])  # the region, selected on its page


def test_zero_shot_tagging_dialog_proposes_tags_and_remembers_descriptions(qtbot, window, scans_project: Path,
                                                                           clip_installed) -> None:
    open_and_wait(qtbot, window, scans_project)
    before = {record.id for record in window.labelling.records()}
    window.actions_by_name["tag-pages"].trigger()
    dialog = window.tools["search"].panel.tagging_dialog
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    names = [table.item(row, 0).text() for row in range(table.rowCount())]
    assert names == [category.name for category in window.labelling.categories()]
    # Nothing is ticked at first (which categories make sense for whole pages is the curator's call).
    assert all(table.item(row, 0).checkState() == Qt.CheckState.Unchecked for row in range(table.rowCount()))
    qtbot.mouseClick(dialog.propose, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "Tick at least one category" in dialog.problem.text()  # refused, still open

    heading, ornament = names.index("Heading"), names.index("Ornament")
    for row in (heading, ornament):  # tick two categories
        rect = table.visualItemRect(table.item(row, 0))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 8, rect.center().y()))
    cell = table.visualItemRect(table.item(heading, 1)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    editor = table.viewport().findChild(QLineEdit)
    assert editor is not None and editor.text() == "a page with a heading"
    editor.selectAll()
    qtbot.keyClicks(editor, "a page with a large printed heading")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on the next turn of the event loop
    qtbot.waitUntil(lambda: table.item(heading, 1).text() == "a page with a large printed heading", timeout=2_000)
    dialog.others.selectAll()
    qtbot.keyClick(dialog.others, Qt.Key.Key_Delete)  # no "none of these": every page gets one of the two
    dialog.certainty.setValue(1)
    qtbot.mouseClick(dialog.propose, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: any("CLIP proposed" in n.label.text() for n in window.notifications.notifications()),
                    timeout=60_000)
    categories = {c.name: c.id for c in window.labelling.categories()}
    described = {categories["Heading"]: "zero-shot: a page with a large printed heading",
                 categories["Ornament"]: "zero-shot: a page with an ornament"}
    with Project.open(scans_project) as project, project.unit_of_work() as session:
        tags = session.scalars(select(Annotation).where(Annotation.prompt.like("zero-shot:%"))).all()
        assert sorted(tag.image_id for tag in tags) == sorted(window.gallery.visible_image_ids())  # one per page
        for tag in tags:  # in a ticked category, with its own description, and left for the curator to review
            assert tag.status == "proposed" and described[tag.category_id] == tag.prompt and tag.score >= 0.5
    qtbot.waitUntil(lambda: {tag.id for tag in tags if tag.image_id == window.labelling.image_id} <=
                    {record.id for record in window.labelling.records()} - before)  # the open page shows its tag

    window.actions_by_name["tag-pages"].trigger()  # reopened: the curator's words are still there
    again = window.tools["search"].panel.tagging_dialog
    assert again is not dialog and again.table.item(heading, 1).text() == "a page with a large printed heading"
    assert [row for row in range(again.table.rowCount())
            if again.table.item(row, 0).checkState() == Qt.CheckState.Checked] == sorted([heading, ornament])
    assert again.others.text() == ""
    again.reject()


def test_the_tagging_dialog_explains_what_it_cannot_do(qtbot) -> None:
    from engine.categories import CategoryRecord
    from gui.tagging_dialog import TaggingDialog, default_description

    maps = CategoryRecord(1, "Map", "#336699", None)
    empty = TaggingDialog([maps], {"1": "a map", "ticked": "1"}, model_name="CLIP", all_pages=0, gallery_pages=[])
    qtbot.addWidget(empty)
    empty.show()
    qtbot.mouseClick(empty.propose, Qt.MouseButton.LeftButton)
    assert empty.isVisible() and "no pages to tag" in empty.problem.text()

    lone = TaggingDialog([maps], {"1": "a map", "ticked": "1", "other": ""}, model_name="CLIP", all_pages=3,
                         gallery_pages=[1, 2, 3])
    qtbot.addWidget(lone)
    lone.show()
    qtbot.mouseClick(lone.propose, Qt.MouseButton.LeftButton)  # one description alone: nothing to choose between
    assert lone.isVisible() and "CLIP chooses between descriptions" in lone.problem.text()
    qtbot.keyClicks(lone.others, "a page of text")
    with qtbot.waitSignal(lone.accepted, timeout=2_000):
        qtbot.mouseClick(lone.propose, Qt.MouseButton.LeftButton)
    assert lone.request().prompts == {1: "a map"} and lone.request().others == ("a page of text",)
    assert (default_description("Coat of arms"), default_description("Initial")) == \
        ("a page with a coat of arms", "a page with an initial")
