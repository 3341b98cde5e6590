"""Review one by one: walk every proposal of the gallery's pages without touching the mouse.

The queue is read once when review starts (page by page in gallery order, each page in reading order).
The canvas zooms to each proposal with some page around it; A or R decides (through the ordinary,
undoable review) and the next proposal comes; N and Shift+N skip forward and back; E keeps the shape
selected for editing its outline first. The status bar counts "312 of 1,204 proposals reviewed".
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, QRectF, QTimer, Signal
from PySide6.QtWidgets import QLabel

from engine.leases import Lease, leases_of_others
from engine.review import QueueItem, proposal_queue
from engine.store.types import AnnotationStatus
from gui.canvas.layers import Layers
from gui.canvas.view import ImageCanvas
from gui.gallery import GalleryPanel
from gui.labelling import LabellingController
from gui.notifications import NotificationArea
from gui.workers import JobRunner

CONTEXT = 4.0  # the view shows the proposal and this many times its size of page around it
MIN_CONTEXT_PX = 300.0  # ... and never less than this much page, so a word is seen in its line


class ReviewQueue(QObject):
    moved = Signal()  # a proposal is shown (tests and screenshots wait for it)
    ended = Signal()

    def __init__(self, labelling: LabellingController, pages: GalleryPanel, canvas: ImageCanvas, jobs: JobRunner,
                 notifications: NotificationArea, counter: QLabel) -> None:
        super().__init__(canvas)
        self._labelling, self._pages, self._canvas, self._jobs = labelling, pages, canvas, jobs
        self._notifications, self._counter = notifications, counter
        self.items: list[QueueItem] = []
        self.position = 0
        self.decided: set[int] = set()
        self.active = False
        self._layers_before: Layers | None = None

    # -- starting and ending --------------------------------------------------------------------

    def start(self) -> None:
        context = self._labelling.ctx
        if context is None:
            return
        project, order, client = context.project, self._pages.visible_image_ids(), context.client

        def gather() -> tuple[list[QueueItem], dict[int, Lease]]:
            # Pages another window reviews are theirs: the queue leaves them out.
            others = leases_of_others(project, client)
            return proposal_queue(project, [page for page in order if page not in others]), others

        def loaded(found: tuple[list[QueueItem], dict[int, Lease]]) -> None:
            items, others = found
            if others.keys() & set(order):
                who = sorted({lease.holder for page, lease in others.items() if page in order})
                self._notifications.info(f"{len(others.keys() & set(order))} page(s) left out of the queue: "
                                         f"{', '.join(who)} {'is' if len(who) == 1 else 'are'} reviewing them.")
            if not items:
                self._notifications.info("No proposals to review on the pages the gallery shows.")
                self.ended.emit()
                return
            self.items, self.position, self.decided, self.active = items, 0, set(), True
            # Every queued proposal must be seen when its turn comes: layers that would hide some are
            # lifted for the review and put back after it.
            self._layers_before = self._canvas.layers
            self._canvas.set_layers(replace(self._layers_before, hidden_categories=frozenset(),
                                            hidden_sources=frozenset(),
                                            statuses=self._layers_before.statuses | {AnnotationStatus.PROPOSED.value}))
            context.events.annotations_edited.connect(self._edited)
            self._show()
            self._notifications.info(f"Reviewing {len(items):,} proposal(s): A accepts, R rejects, N skips, "
                                     "Shift+N goes back, E edits first. Ctrl+R ends.")

        self._jobs.submit("Gathering the proposals to review",
                          lambda progress, cancel: gather(), loaded)

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        if self._layers_before is not None:
            self._canvas.set_layers(self._layers_before)
            self._layers_before = None
        context = self._labelling.ctx
        if context is not None:
            context.events.annotations_edited.disconnect(self._edited)
        self._counter.setText("")
        self._counter.hide()
        self._notifications.info(f"Review ended: {len(self.decided):,} of {len(self.items):,} proposals "
                                 "reviewed.")
        self.ended.emit()

    # -- moving --------------------------------------------------------------------------------

    def step(self, offset: int) -> None:
        if self.active and self.items:
            self.position = min(max(self.position + offset, 0), len(self.items) - 1)
            self._show()

    def edit(self) -> None:
        """Keep the proposal selected and show it closer, for reshaping before A accepts it."""
        if not self.active:
            return
        self._canvas.set_tool("select")
        self._zoom_to(self.items[self.position], context=1.6)

    def _show(self) -> None:
        item = self.items[self.position]
        self._say_count()
        if self._labelling.image_id != item.image_id and not self._pages.reveal(item.image_id):
            self._skip_gone(item)
            return
        self._labelling.select_annotations([item.annotation_id])
        self._zoom_to(item, CONTEXT)
        self.moved.emit()

    def _skip_gone(self, item: QueueItem) -> None:
        # The page left the project since review began: its proposals are gone too.
        self.items = [other for other in self.items if other.image_id != item.image_id]
        if not self.items:
            self.stop()
            return
        self.position = min(self.position, len(self.items) - 1)
        self._show()

    def _zoom_to(self, item: QueueItem, context: float) -> None:
        x, y, w, h = item.bbox
        side = max(MIN_CONTEXT_PX, w * context, h * context)
        centre_x, centre_y = x + w / 2, y + h / 2
        self._canvas.zoom_to(QRectF(centre_x - side / 2, centre_y - side / 2, side, side).intersected(
            self._canvas.sceneRect()) or QRectF(x, y, w, h))

    def _say_count(self) -> None:
        self._counter.setText(f"Review: {len(self.decided):,} of {len(self.items):,} proposals reviewed")
        self._counter.setToolTip("A accepts, R rejects, N skips, Shift+N goes back, E edits first; "
                                 "Ctrl+R ends the review")
        self._counter.show()

    # -- decisions -------------------------------------------------------------------------------

    def _edited(self, image_id: int, ids: list[int]) -> None:
        if not self.active or not self.items:
            return
        current = self.items[self.position]
        records = {record.id: record for record in self._labelling.records()}
        for annotation_id in ids:
            record = records.get(annotation_id)
            decided = record is None or record.status is not AnnotationStatus.PROPOSED
            (self.decided.add if decided else self.decided.discard)(annotation_id)
        self._say_count()
        if current.annotation_id in ids and current.annotation_id in self.decided:
            # After the review's own follow-up (which selects the page's next proposal by id), go on in
            # queue order.
            QTimer.singleShot(0, self._advance)

    def _advance(self) -> None:
        if not self.active:
            return
        following = next((index for index in range(self.position + 1, len(self.items))
                          if self.items[index].annotation_id not in self.decided), None)
        if following is None:
            self._notifications.info(f"Every proposal in the queue is reviewed ({len(self.items):,}).")
            self.stop()
            return
        self.position = following
        self._show()
