"""The Find Text tool and the Text dock, with real keys, clicks and typing: the Kant page's PAGE ground truth as
a tree, a line's words lit with it, transcriptions typed and undone, a paragraph accepted with its lines and
words in one undoable step, and a run of the tiny Hi-SAM from the tool."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton
from sqlalchemy import select

from engine.ingest.scan_import import import_scans
from engine.layout.files import import_layout_files
from engine.models.store import ModelStore
from engine.project import Project
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus, SourceKind
from tests.gui.conftest import open_and_wait
from tests.modelkit.tiny import tiny_spec

KANT = "kant_aufklaerung_1784_0017"


@pytest.fixture
def kant_project(tmp_path: Path, shared_data: Path) -> Path:
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(shared_data / "manuscripts" / f"{KANT}.tif", scans)
    with Project.create(tmp_path / "kant", name="Kant") as project:
        import_scans(project, [scans])
        import_layout_files(project, [shared_data / "manuscripts" / f"{KANT}.page.xml"], "page")
        with project.unit_of_work() as session:  # as if a model had proposed them: to be reviewed
            for annotation in session.scalars(select(Annotation)):
                annotation.status = AnnotationStatus.PROPOSED
                annotation.source_kind = SourceKind.MODEL
    return tmp_path / "kant"


def _annotation(window, annotation_id: int) -> Annotation:
    with window.project.unit_of_work() as session:
        row = session.get(Annotation, annotation_id)
        session.expunge(row)
        return row


def test_the_text_dock_shows_the_page_as_a_tree_and_edits_transcriptions(qtbot, window, kant_project: Path) -> None:
    open_and_wait(qtbot, window, kant_project)
    tool = window.tools["text"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    assert window.canvas.tool is tool.tool
    qtbot.waitUntil(tool.options.isVisible, timeout=3000)
    window.docks["text"].raise_()
    panel = tool.panel
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 11, timeout=10_000)  # the text regions (not separators)
    heading = panel.tree.topLevelItem(0)
    assert heading.text(0) == "Heading 1" and heading.childCount() == 1
    line = heading.child(0)
    assert line.text(0) == "Line 1" and line.text(1) == "Berliniſche Monatsſchrift."
    assert [line.child(i).text(1) for i in range(line.childCount())] == ["Berliniſche", "Monatsſchrift", "."]
    # Issue 27, 11: a paragraph's lines show on one row (they spilled over the rows below), whole in its tooltip;
    # the text column takes the dock's room.
    from PySide6.QtCore import QLocale
    from PySide6.QtWidgets import QHeaderView

    delegate = panel.tree.itemDelegateForColumn(1)
    assert delegate.displayText("Was ist\nAufklärung?", QLocale()) == "Was ist ⏎ Aufklärung?"
    assert panel.tree.header().sectionResizeMode(1) == QHeaderView.ResizeMode.Stretch
    assert line.toolTip(1).startswith("Berliniſche Monatsſchrift.")

    # A click on a line selects it and its words on the page.
    heading.setExpanded(True)
    panel.tree.scrollToItem(line)
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=panel.tree.visualItemRect(line).center())
    line_id = line.data(0, Qt.ItemDataRole.UserRole)
    words = [line.child(i).data(0, Qt.ItemDataRole.UserRole) for i in range(3)]
    qtbot.waitUntil(lambda: sorted(window.canvas.selected_ids()) == sorted([line_id, *words]), timeout=5000)

    # Typing a transcription: one undoable step.
    word = line.child(1)
    word_id = word.data(0, Qt.ItemDataRole.UserRole)
    panel.tree.scrollToItem(word)
    panel.tree.setCurrentItem(word, 1)
    panel.tree.editItem(word, 1)
    editor = panel.tree.focusWidget()
    editor.selectAll()
    qtbot.keyClicks(editor, "Monatsschrift")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _annotation(window, word_id).text == "Monatsschrift", timeout=5000)
    assert _annotation(window, word_id).parent_id == line_id
    window.undo_stack.undo()
    assert _annotation(window, word_id).text == "Monatsſchrift"
    qtbot.waitUntil(lambda: panel.item(word_id) is not None and panel.item(word_id).text(1) == "Monatsſchrift",
                    timeout=5000)


def test_accepting_a_paragraph_accepts_its_lines_and_words_in_one_undoable_step(qtbot, window,
                                                                                kant_project: Path) -> None:
    open_and_wait(qtbot, window, kant_project)
    panel = window.tools["text"].controller.panel
    window.docks["text"].raise_()
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 11, timeout=10_000)
    paragraph = next(panel.tree.topLevelItem(i) for i in range(11) if panel.tree.topLevelItem(i).childCount() > 3)
    paragraph_id = paragraph.data(0, Qt.ItemDataRole.UserRole)
    inside = [paragraph.child(i).data(0, Qt.ItemDataRole.UserRole) for i in range(paragraph.childCount())]
    inside += [paragraph.child(i).child(j).data(0, Qt.ItemDataRole.UserRole)
               for i in range(paragraph.childCount()) for j in range(paragraph.child(i).childCount())]
    window.labelling.select_annotations([paragraph_id])
    qtbot.waitUntil(lambda: window.canvas.selected_ids() == [paragraph_id], timeout=5000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    statuses = {i: _annotation(window, i).status for i in [paragraph_id, *inside]}
    assert set(statuses.values()) == {AnnotationStatus.ACCEPTED} and len(inside) > 20
    assert "with" in window.undo_stack.undoText()
    window.undo_stack.undo()
    assert {_annotation(window, i).status for i in [paragraph_id, *inside]} == {AnnotationStatus.PROPOSED}


def test_find_text_runs_the_model_on_the_page_from_the_tool(qtbot, window, kant_project: Path, tiny_models,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    store = ModelStore()
    for model in ("sam-vit-b", "hi-sam-vit-b"):
        store.import_files(tiny_spec(model), [tiny_models(model)])
    open_and_wait(qtbot, window, kant_project)
    tool = window.tools["text"].controller
    qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    qtbot.waitUntil(tool.options.isVisible, timeout=3000)
    qtbot.mouseClick(tool.options.levels["strokes"], Qt.MouseButton.LeftButton)
    levels = tool.options.chosen_levels()
    assert levels == {"strokes", "paragraphs", "lines", "words"}
    from engine.batch.estimates import WorkCosts, work_kind
    from engine.batch.tasks.text import TextTask
    from engine.jobs import describe_duration
    from engine.text.hierarchy import TextOptions

    service = tool.context.models()
    # At the page's scale this computer once took 10 min a window: the scan is read in several windows, and the
    # question counts them all.
    assert tool.options.window.currentData() == 1024
    at_scale = TextTask("hi-sam-vit-b", levels, TextOptions(), "")
    windows = at_scale.page_work(tool.context.pages.model.rows()[0])
    assert windows > 1
    WorkCosts().record(work_kind(at_scale, service), 600.0)
    qtbot.mouseClick(tool.options.run, Qt.MouseButton.LeftButton)
    question = _question_asked(qtbot, window)
    assert question.label.text() == f"Find Text on 1 page: about {describe_duration(600.0 * windows)} here."
    qtbot.mouseClick(question.findChild(QToolButton), Qt.MouseButton.LeftButton)  # dismissed: nothing starts
    qtbot.waitUntil(lambda: not [note for note in window.notifications.notifications() if note.buttons])
    assert not tool.running
    tool.options.window.setCurrentIndex(tool.options.window.findData(None))  # the whole page: one window
    # This computer once took 10 min a page for this very work: the tool says so before it starts, and offers
    # the cluster set in the Models dialog.
    kind = work_kind(TextTask("hi-sam-vit-b", levels, TextOptions(window=None), ""), service)
    WorkCosts().record(kind, 600.0)
    monkeypatch.setattr(tool.context.settings, "large_jobs_cluster", "127.0.0.1:6379")
    qtbot.mouseClick(tool.options.run, Qt.MouseButton.LeftButton)
    question = _question_asked(qtbot, window)
    assert question.label.text() == "Find Text on 1 page: about 10 min here."
    assert [button.text() for button in question.buttons] == ["Run here", "Run on the cluster"]
    assert tool.options.run.isEnabled() and not tool.running  # nothing started yet
    qtbot.mouseClick(question.buttons[0], Qt.MouseButton.LeftButton)
    assert not tool.options.run.isEnabled()
    qtbot.waitUntil(lambda: not tool.running, timeout=120_000)
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert any(text.startswith("Find text:") and "on 1 page(s)" in text for text in texts), texts
    measured = WorkCosts().seconds_per_unit(kind)
    assert measured is not None and measured < 600.0  # the run here is now part of the record


def _question_asked(qtbot, window) -> Any:
    """The one note that asks before a long run (worked out off the window's thread, so waited for)."""
    qtbot.waitUntil(lambda: any(note.buttons for note in window.notifications.notifications()), timeout=10_000)
    [question] = [note for note in window.notifications.notifications() if note.buttons]
    return question


def test_page_xml_and_alto_are_imported_and_exported_from_the_file_menu(qtbot, window, tmp_path: Path,
                                                                          shared_data: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(shared_data / "manuscripts" / f"{KANT}.tif", scans)
    with Project.create(tmp_path / "plain", name="Plain") as project:
        import_scans(project, [scans])
    open_and_wait(qtbot, window, tmp_path / "plain")
    assert window.actions_by_name["import-layout"].text() == "Import PAGE XML or &ALTO…"
    broken = tmp_path / "other.xml"
    broken.write_text("<html/>", encoding="utf-8")
    window.layouts.import_files([shared_data / "manuscripts" / f"{KANT}.alto.xml", broken])  # as the dialog would
    panel = window.tools["text"].controller.panel
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 11, timeout=20_000)  # the page shows them at once
    texts = [note.label.text() for note in window.notifications.notifications()]
    assert any("Imported 1 file(s)" in text and "other.xml" in text and "neither PAGE XML nor ALTO" in text
               for text in texts), texts
    out = tmp_path / "out"
    window.layouts.export_to(out, "page")
    qtbot.waitUntil(lambda: (out / f"{KANT}.page.xml").is_file(), timeout=20_000)
    from engine.layout.page_xml import read_page

    assert read_page(out / f"{KANT}.page.xml").counts() == (13, 24, 161)  # with the 2 separators


def test_the_annotations_table_indents_lines_under_paragraphs_and_words_under_lines(qtbot, window,
                                                                                      kant_project: Path) -> None:
    open_and_wait(qtbot, window, kant_project)
    table = window.annotations.model
    names = [table.index(row, 1).data() for row in range(table.rowCount())]
    assert names[:5] == ["Heading", "└ Line", "   └ Word", "   └ Word", "   └ Word"]
    assert names.count("└ Line") == 24 and names.count("   └ Word") == 161
