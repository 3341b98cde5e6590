"""Menus and shortcuts, following desktop conventions (File, Edit, View, Tools, Help)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from engine.store.types import AnnotationStatus
from gui.dialogs import ShortcutsDialog, ask_curator_name, show_about
from gui.icons import themed_icon
from gui.team_join import ask_join_team_project

if TYPE_CHECKING:
    from gui.main_window import MainWindow
    from gui.tools.seam import ToolOffer

Keys = QKeySequence.StandardKey | str | list[str] | None


def _add(menu: QMenu, registry: dict[str, QAction], name: str, text: str, slot: Callable[[], object],
         keys: Keys = None, tip: str = "") -> QAction:
    action = QAction(text, menu.parentWidget())
    if isinstance(keys, list):
        action.setShortcuts([QKeySequence(k) for k in keys])
    elif keys is not None:
        action.setShortcut(QKeySequence(keys))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(lambda checked=False: slot())
    menu.addAction(action)
    registry[name] = action
    return action


def build_menus(window: MainWindow, offers: list[ToolOffer]) -> dict[str, QAction]:
    """Every menu; the Tools menu takes each model tool's palette entries and actions from its offer."""
    actions: dict[str, QAction] = {}
    bar = window.menuBar()
    files, labels, canvas = window.files, window.labelling, window.canvas

    file_menu = bar.addMenu("&File")
    _add(file_menu, actions, "new", "&New Project…", window.ask_new_project, QKeySequence.StandardKey.New)
    _add(file_menu, actions, "open", "&Open Project…", window.ask_open_project, QKeySequence.StandardKey.Open)
    _add(file_menu, actions, "join-team", "&Join Team Project…",
         lambda: ask_join_team_project(window, window.settings, window.jobs, window.notifications,
                                       window.attach_project))
    recent = file_menu.addMenu("Open &Recent")
    recent.aboutToShow.connect(lambda: _fill_recent(window, recent))
    _add(file_menu, actions, "demo", "Open &Demo Project", window.open_demo)
    _add(file_menu, actions, "close", "&Close Project", window.close_project, QKeySequence.StandardKey.Close)
    file_menu.addSeparator()
    _add(file_menu, actions, "import-files", "&Import Images…", files.ask_import_files, "Ctrl+I")
    _add(file_menu, actions, "import-folder", "Import &Folder…", files.ask_import_folder, "Ctrl+Shift+I")
    _add(file_menu, actions, "relink", "Re&link Moved Images…", files.ask_relink)
    file_menu.addSeparator()
    _add(file_menu, actions, "import-coco", "Import &COCO Annotations…", files.ask_import_coco)
    _add(file_menu, actions, "import-layout", "Import PAGE XML or &ALTO…", window.layouts.ask_import)
    _add(file_menu, actions, "import-iiif", "Import from II&IF…", window.iiif.ask_import)
    _add(file_menu, actions, "import-w3c", "Import W3C &Web Annotations…", window.iiif.ask_import_annotations)
    _add(file_menu, actions, "import-report", "Last Import &Report…", files.show_import_report)
    _add(file_menu, actions, "export-coco", "&Export COCO (accepted)…", files.ask_export_coco, "Ctrl+E")
    _add(file_menu, actions, "export-coco-all", "Export COCO with &Proposals…",
         lambda: files.ask_export_coco(include_proposals=True))
    _add(file_menu, actions, "export-page", "Export PAGE &XML…", lambda: window.layouts.ask_export("page"))
    _add(file_menu, actions, "export-alto", "Export A&LTO…", lambda: window.layouts.ask_export("alto"))
    _add(file_menu, actions, "export-w3c", "Export IIIF with Web A&nnotations…", window.iiif.ask_export)
    file_menu.addSeparator()
    _add(file_menu, actions, "quit", "&Quit", window.close, QKeySequence.StandardKey.Quit)

    edit = bar.addMenu("&Edit")
    undo = window.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = window.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcuts(_unique([*QKeySequence.keyBindings(QKeySequence.StandardKey.Redo),
                               QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")]))
    edit.addActions([undo, redo])
    actions["undo"], actions["redo"] = undo, redo
    edit.addSeparator()
    _add(edit, actions, "accept", "&Accept Proposal", lambda: labels.review_selected(AnnotationStatus.ACCEPTED), "A")
    _add(edit, actions, "reject", "&Reject Proposal", lambda: labels.review_selected(AnnotationStatus.REJECTED), "R")
    _add(edit, actions, "accept-all", "Accept All on This &Page", labels.accept_all, "Shift+A")
    _add(edit, actions, "delete", "&Delete Annotation", labels.delete_selected, ["Del"])
    review = _add(edit, actions, "review-queue", "Review Proposals One by &One", lambda: _toggle_review(window),
                  "Ctrl+R", "Walk every proposal of the gallery's pages: A accepts, R rejects, N skips")
    review.setCheckable(True)
    window.review.ended.connect(lambda: review.setChecked(False))
    _add(edit, actions, "review-next", "Next Proposal in Review", lambda: window.review.step(1), "N")
    _add(edit, actions, "review-previous", "Previous Proposal in Review", lambda: window.review.step(-1), "Shift+N")
    _add(edit, actions, "review-edit", "Edit Proposal Before Deciding", window.review.edit, "E")
    _add(edit, actions, "to-polygon", "Convert Mask to &Polygon", labels.convert_selected_to_polygon, "",
         "The selected masks become editable polygons (their outlines)")
    _add(edit, actions, "bulk-review", "Review in &Bulk…", labels.open_bulk_review, "Ctrl+Shift+B",
         "Accept, reject, recategorise or delete many annotations at once, chosen by score, model, run…")
    _add(edit, actions, "cancel", "Cancel Drawing / Clear Selection",
         lambda: canvas.cancel_drawing() or canvas.select_annotations([]), "Esc")
    edit.addSeparator()
    category_menu = edit.addMenu("Set &Category")
    for number in range(1, 10):
        _add(category_menu, actions, f"category-{number}", f"Category {number}",
             lambda number=number: labels.choose_category_by_hotkey(number), str(number))
    _add(edit, actions, "curator", "Change Curator &Name…", lambda: _change_curator(window))

    view = bar.addMenu("&View")
    _add(view, actions, "zoom-in", "Zoom &In", canvas.zoom_in, ["+", "=", "Ctrl++"])
    _add(view, actions, "zoom-out", "Zoom &Out", canvas.zoom_out, ["-", "Ctrl+-"])
    _add(view, actions, "fit", "&Fit Page", canvas.fit, ["F", "Ctrl+0"])
    _add(view, actions, "actual", "&Actual Size (1:1)", canvas.actual_size, "Ctrl+1")
    view.addSeparator()
    _add(view, actions, "next", "&Next Page", lambda: window.gallery.step(1), "PgDown")
    _add(view, actions, "previous", "&Previous Page", lambda: window.gallery.step(-1), "PgUp")
    view.addSeparator()
    view.addMenu(window.layers)
    actions["outline-only"] = window.layers.outline_action
    view.addAction(window.layers.outline_action)
    view.addSeparator()
    for dock in window.docks.values():
        view.addAction(dock.toggleViewAction())

    tools = bar.addMenu("&Tools")
    group = QActionGroup(window)
    palette = [("select", "&Select / Move", "V", "Select", "select"), ("box", "&Box", "B", "Box", "box"),
               ("polygon", "&Polygon", "P", "Polygon", "polygon"), ("brush", "Br&ush", "U", "Brush", "brush"),
               ("eraser", "&Eraser", "X", "Eraser", "eraser")]
    palette += [(entry.tool.name, entry.text, entry.key, entry.tool.label, entry.icon) for offer in offers
                for entry in offer.palette]
    for name, text, key, short, icon in palette:
        action = _add(tools, actions, f"tool-{name}", text, lambda name=name: canvas.set_tool(name), key)
        action.setIconText(short)
        action.setIcon(themed_icon(icon))
        action.setToolTip(f"{text.replace('&', '')} ({key})")
        action.setCheckable(True)
        group.addAction(action)
    actions["tool-select"].setChecked(True)
    for offer in offers:
        if offer.menu:
            tools.addSeparator()
        for item in offer.menu:
            if item is None:
                tools.addSeparator()
                continue
            name, action = item
            if name in actions:
                raise ValueError(f"Two menu actions are named {name!r}")
            tools.addAction(action)
            actions[name] = action
    tools.addSeparator()
    _add(tools, actions, "models", "&Models…", lambda: _show_models(window))

    help_menu = bar.addMenu("&Help")
    _add(help_menu, actions, "shortcuts", "&Keyboard Shortcuts", lambda: _show_shortcuts(window, actions),
         QKeySequence.StandardKey.HelpContents)
    _add(help_menu, actions, "about", "&About Marginalia", lambda: show_about(window))
    return actions


def _unique(sequences: list[QKeySequence]) -> list[QKeySequence]:
    # The same key twice makes a shortcut ambiguous, and Qt then fires neither.
    seen: dict[str, QKeySequence] = {}
    for sequence in sequences:
        seen.setdefault(sequence.toString(), sequence)
    return list(seen.values())


def _fill_recent(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    folders = window.settings.recent_projects()
    for folder in folders:
        action = menu.addAction(str(folder))
        action.setEnabled(folder.exists())
        action.triggered.connect(lambda checked=False, folder=folder: window.open_project(folder))
    if not folders:
        menu.addAction("No recent projects").setEnabled(False)


def _show_shortcuts(window: MainWindow, actions: dict[str, QAction]) -> None:
    dialog = ShortcutsDialog(list(actions.values()), window,
                             [category.name for number in range(1, 10)
                              if (category := window.categories.by_hotkey(number)) is not None])
    dialog.setModal(False)
    dialog.show()


def _show_models(window: MainWindow) -> None:
    from gui.model_hint import show_models  # noqa: PLC0415 - the models code loads on demand

    show_models(window)


def _toggle_review(window: MainWindow) -> None:
    if window.review.active:
        window.review.stop()
    else:
        window.review.start()


def _change_curator(window: MainWindow) -> None:
    name = ask_curator_name(window, window.curator)
    if name:
        window.settings.curator = name
        window.notifications.info(f"Your next session will be recorded as {name}.")
