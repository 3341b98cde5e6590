"""Which pages a model tool runs on: the open page, the pages selected in the gallery, the gallery's pages
(its filters applied), or every page of the project."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox

from gui.tools.seam import ToolContext

SCOPES = (("page", "This page"), ("selected", "Selected pages"), ("gallery", "Gallery's pages"),
          ("all", "All pages"))


def scope_box() -> QComboBox:
    box = QComboBox()
    for key, text in SCOPES:
        box.addItem(text, key)
    box.setToolTip("Which pages to look at (select several in the gallery with Ctrl- or Shift-click)")
    return box


def pages_in_scope(context: ToolContext, scope: str) -> list[int]:
    if scope == "page":
        current = context.labelling.image_id
        return [current] if current is not None else []
    if scope == "selected":
        return context.pages.selected_image_ids()
    if scope == "gallery":
        return context.pages.visible_image_ids()
    return [row.id for row in context.pages.model.rows()]  # every page, whatever the filters


def on_cluster(cluster: Any) -> str:
    """The end of a job's title that says it runs on a cluster (nothing when it runs here)."""
    return f" on the Ray cluster ({cluster.address})" if cluster is not None else ""
