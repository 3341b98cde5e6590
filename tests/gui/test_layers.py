"""Layers: statuses, categories and sources can be hidden, fills dimmed or dropped; remembered per project."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar, QToolButton

from engine.store.types import AnnotationStatus
from gui.canvas.layers import Layers, source_of
from tests.gui.conftest import open_and_wait


def _visible(window) -> set[int]:
    return {r.id for r in window.labelling.records() if window.canvas.drawn(r.id).visible}


def _choose(menu, text: str):
    action = next(a for a in menu.actions() if a.text().replace("&", "") == text)
    action.trigger()
    return action


def test_layers_hide_and_show_by_status_category_and_source_and_are_remembered(qtbot, window,
                                                                              scans_project: Path) -> None:
    open_and_wait(qtbot, window, scans_project)
    records = window.labelling.records()
    assert len({r.status for r in records}) >= 2 and len({r.category_id for r in records}) >= 2
    assert _visible(window) == {r.id for r in records if r.status is not AnnotationStatus.REJECTED}
    palette = window.findChild(QToolBar, "toolbar-palette")
    button = next(b for b in palette.findChildren(QToolButton) if b.text() == "Layers")
    menu = button.menu()
    menu.aboutToShow.emit()  # what opening the menu does

    _choose(menu, "Proposals")  # hide proposals
    assert _visible(window) == {r.id for r in records if r.status is AnnotationStatus.ACCEPTED}
    hidden = records[0].category_id
    categories = window.layers.categories
    name = next(c.name for c in window.labelling.categories() if c.id == hidden)
    _choose(categories, name)
    assert _visible(window) == {r.id for r in records if r.status is AnnotationStatus.ACCEPTED
                                and r.category_id != hidden}
    menu.aboutToShow.emit()
    sources = window.layers.sources
    source = source_of(records[0])
    _choose(sources, source)
    assert all(source_of(r) != source for r in records if r.id in _visible(window))

    qtbot.keyClick(window.canvas, Qt.Key.Key_O)  # outline only
    drawn = window.canvas.drawn(next(iter(_visible(window)), records[0].id))
    assert window.canvas.layers.outline_only and drawn.brush.style() == Qt.BrushStyle.NoBrush
    window.layers.opacity.setValue(40)
    assert window.canvas.layers.opacity == 0.4

    remembered = window.canvas.layers
    window.close_project()
    window.canvas.set_layers(Layers())
    open_and_wait(qtbot, window, scans_project)
    assert window.canvas.layers == remembered  # this project's choice comes back
    assert _visible(window) == {r.id for r in window.labelling.records() if remembered.shows(r)}
    window.layers.aboutToShow.emit()
    _choose(window.layers, "Show Everything")
    assert _visible(window) == {r.id for r in window.labelling.records()}


def test_unreadable_remembered_layers_fall_back_to_showing_shapes() -> None:
    assert Layers.from_json("{not json") == Layers()
    assert Layers.from_json('{"opacity": "a lot"}') == Layers()
    assert Layers.from_json(Layers(opacity=0.25, hidden_sources=frozenset({"hi-sam"})).to_json()) == \
        Layers(opacity=0.25, hidden_sources=frozenset({"hi-sam"}))
