"""Which pages a model tool runs on: the open page, the pages selected in the gallery, the gallery's pages
(its filters applied), or every page of the project."""

from __future__ import annotations

from collections.abc import Callable
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


def start_or_ask(context: ToolContext, what: str, task: Any, service: Any, pages: list[int],
                 start: Callable[[Any, str], object], *, cluster_allowed: bool = True) -> None:
    """Start a job of ``task`` over ``pages`` (ids) with ``start(cluster, took)`` (``took``: "about 40 min here",
    or nothing where unknown or on the cluster): at once where it goes to the cluster
    set in the Models dialog, where it is short, or where this work was never measured here; where this computer
    would take long (:mod:`engine.batch.estimates`), first say how long — "Find Text on 20 pages: about 40 min
    here" — with "Run here" and, when a cluster is set, "Run on the cluster". A note, not a dialog: nothing
    waits on it, and a second press of the tool's button only repeats the question. The estimate is worked out
    off the window's thread: it asks which pages were read before (a cache file a page for some tools, slow
    for thousands of pages on a network share)."""
    cluster = context.cluster_for(len(pages)) if cluster_allowed else None
    if cluster is not None:
        start(cluster, "")
        return
    from engine.batch.estimates import WorkCosts, estimate_for  # noqa: PLC0415 - torch loads when used

    project = context.project()
    rows = [row for image_id in pages if (row := context.pages.model.row_for(image_id)) is not None]

    def estimated(guess: Any) -> None:
        if project is not context.project():
            return  # another project by now: its pages were not asked about
        if not guess.long:
            start(None, guess.brief)
            return
        actions: list[tuple[str, Callable[[], object]]] = [("Run here", lambda: start(None, guess.brief))]
        address = context.settings.large_jobs_cluster
        if address and cluster_allowed:
            from engine.batch.runner import ClusterChoice  # noqa: PLC0415

            actions.append(("Run on the cluster", lambda: start(ClusterChoice(address), "")))
        context.notifications.show_message("warning", f"{guess.sentence()}.", actions)

    context.jobs.submit(f"Working out how long {what} takes",
                        lambda _progress, _cancel: estimate_for(WorkCosts(), task, service, project, rows, what),
                        estimated, visible=False)


def submit_batch(context: ToolContext, title: str, task: Any, service: Any, pages: list[int], cluster: Any,
                 took: str, done: Callable[[Any], object], ended: Callable[[], object]) -> None:
    """The batch job of ``task`` over ``pages`` in the jobs area, titled with where it runs and ``took`` (how
    long it should take here); ``done(report)`` after it, ``ended()`` however it ends."""
    from engine.batch.runner import run_batch  # noqa: PLC0415 - torch loads when used

    project = context.project()
    job = context.jobs.submit(
        f"{title}{on_cluster(cluster)}{f' · {took}' if took else ''}",
        lambda progress, cancel: run_batch(project, service, task, pages, cluster, progress=progress, cancel=cancel),
        done, background=len(pages) > 1)
    job.ended.connect(ended)
