"""Review in bulk: choose annotations by scope, status, score, category, model, run and prompt, then accept,
reject, recategorise or delete them all in one undoable step.

The count of matching annotations follows the filter as it changes (counted in a job). The change runs
as a job with progress and cancel; its undo and redo run as jobs too, one after another in the order
they were asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QUndoCommand, QUndoStack
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from engine.categories import CategoryRecord
from engine.jobs import CancelToken
from engine.review import (BulkChange, FilterChoices, ProposalFilter, count_matching, delete_matching,
                           filter_choices, recategorise_matching, redo_change, review_matching, undo_change)
from engine.store.types import AnnotationStatus
from gui.commands import EditContext
from gui.notifications import NotificationArea
from gui.workers import JobRunner

SCOPES = ("This page", "Pages shown in the gallery", "The whole project")
STATUSES = (("Proposals", AnnotationStatus.PROPOSED), ("Accepted", AnnotationStatus.ACCEPTED),
            ("Rejected", AnnotationStatus.REJECTED), ("Any status", None))


@dataclass(frozen=True)
class BulkScope:
    """Where a bulk change may reach, as the window sees it when the dialog opens."""

    current_page: int | None
    gallery_pages: list[int]


class _InOrder:
    """Bulk changes, undos and redos write one after another, in the order they were asked for."""

    def __init__(self) -> None:
        self._last = threading.Event()
        self._last.set()

    def turn(self) -> tuple[threading.Event, threading.Event]:
        before, mine = self._last, threading.Event()
        self._last = mine
        return before, mine


IN_ORDER = _InOrder()


def _in_turn(work: Callable[[Any, CancelToken], Any]) -> Callable[[Any, CancelToken], Any]:
    before, mine = IN_ORDER.turn()

    def run(progress: Any, cancel: CancelToken) -> Any:
        try:
            while not before.wait(0.2):
                cancel.raise_if_cancelled()
            return work(progress, cancel)
        finally:
            mine.set()

    return run


class BulkChangeCommand(QUndoCommand):
    """A bulk change already made by its job; undo and redo run as jobs of their own."""

    def __init__(self, context: EditContext, jobs: JobRunner, change: BulkChange) -> None:
        super().__init__(change.description)
        self.ctx, self.jobs, self.change = context, jobs, change
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            return  # the first redo: the job that made the change has already written it
        self._run(f"Redoing: {self.change.description}", redo_change, applied_after=True)

    def undo(self) -> None:
        self._run(f"Undoing: {self.change.description}", undo_change, applied_after=False)

    def _run(self, title: str, step: Callable[..., None], *, applied_after: bool) -> None:
        project, change, events = self.ctx.project, self.change, self.ctx.events

        def refused(message: str) -> None:
            # Refused whole (someone changed these rows since): the rows stay as they are, and so does this step.
            self._applied = not applied_after
            self.ctx.report_error(message)
            events.annotations_changed.emit(-1)

        self._applied = applied_after
        self.jobs.submit(title, _in_turn(lambda progress, cancel: step(project, change, progress=progress,
                                                                         cancel=cancel)),
                         lambda _: events.annotations_changed.emit(-1), background=True,
                         on_failure=refused)


class BulkReviewDialog(QDialog):
    def __init__(self, context: EditContext, jobs: JobRunner, undo_stack: QUndoStack,
                 notifications: NotificationArea, categories: list[CategoryRecord], scope: BulkScope,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review in bulk")
        self.ctx, self.jobs, self.undo_stack, self.notifications = context, jobs, undo_stack, notifications
        self.scope_pages = scope
        self.scope = QComboBox()
        self.scope.addItem(SCOPES[0], None if scope.current_page is None else frozenset({scope.current_page}))
        self.scope.addItem(f"{SCOPES[1]} ({len(scope.gallery_pages):,})", frozenset(scope.gallery_pages))
        self.scope.addItem(SCOPES[2], None)
        if scope.current_page is None:
            self.scope.model().item(0).setEnabled(False)
            self.scope.setCurrentIndex(2)
        self.status = QComboBox()
        for text, status in STATUSES:
            self.status.addItem(text, status)
        self.use_score = QCheckBox("Score between")
        self.min_score, self.max_score = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.min_score, 0.8), (self.max_score, 1.0)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setValue(value)
        self.category = QComboBox()
        self.category.addItem("Any category", None)
        for category in categories:
            self.category.addItem(category.name, category.id)
        self.model, self.run, self.prompt = QComboBox(), QComboBox(), QComboBox()
        self.model.addItem("Any source", None)
        self.run.addItem("Any model run", None)
        self.prompt.addItem("Any prompt", None)
        self.count = QLabel("Counting…")
        self.count.setWordWrap(True)
        score_row = QHBoxLayout()
        for widget in (self.use_score, self.min_score, QLabel("and"), self.max_score):
            score_row.addWidget(widget)
        score_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Where:", self.scope)
        form.addRow("Status:", self.status)
        form.addRow(score_row)
        form.addRow("Category:", self.category)
        form.addRow("Made by:", self.model)
        form.addRow("Model run:", self.run)
        form.addRow("Prompt:", self.prompt)
        self.accept_button, self.reject_button = QPushButton("Accept"), QPushButton("Reject")
        self.recategorise_button, self.delete_button = QPushButton("Set category to"), QPushButton("Delete…")
        self.new_category = QComboBox()
        for category in categories:
            self.new_category.addItem(category.name, category.id)
        self.accept_button.clicked.connect(lambda: self._review(AnnotationStatus.ACCEPTED))
        self.reject_button.clicked.connect(lambda: self._review(AnnotationStatus.REJECTED))
        self.recategorise_button.clicked.connect(self._recategorise)
        self.delete_button.clicked.connect(self._delete)
        actions = QHBoxLayout()
        for widget in (self.accept_button, self.reject_button, self.recategorise_button, self.new_category,
                       self.delete_button):
            actions.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.count)
        layout.addLayout(actions)
        self.matching = 0
        self._timer = QTimer(self, singleShot=True, interval=150)  # count once the curator stops typing
        self._timer.timeout.connect(self._count)
        for combo in (self.scope, self.status, self.category, self.model, self.run, self.prompt):
            combo.currentIndexChanged.connect(lambda _: self._timer.start())
        self.use_score.toggled.connect(lambda _: self._timer.start())
        for spin in (self.min_score, self.max_score):
            spin.valueChanged.connect(lambda _: self._timer.start())
        self._load_choices()
        self._count()

    def _load_choices(self) -> None:
        project = self.ctx.project

        def fill(choices: FilterChoices) -> None:
            for name in choices.source_models:
                self.model.addItem(name, name)
            for run in choices.runs:
                self.run.addItem(f"#{run.id} {run.model_id}, {run.started} ({run.proposals:,} proposals)", run.id)
            for prompt in choices.prompts:
                self.prompt.addItem(prompt if len(prompt) <= 60 else prompt[:57] + "…", prompt)

        self.jobs.submit("Listing models and prompts", lambda progress, cancel: filter_choices(project), fill,
                         visible=False)

    def selection(self) -> ProposalFilter:
        scored = self.use_score.isChecked()
        category = self.category.currentData()
        return ProposalFilter(status=self.status.currentData(), image_ids=self.scope.currentData(),
                              min_score=self.min_score.value() if scored else None,
                              max_score=self.max_score.value() if scored else None,
                              category_ids=None if category is None else frozenset({category}),
                              source_model=self.model.currentData(), model_run_id=self.run.currentData(),
                              prompt=self.prompt.currentData())

    def _count(self) -> None:
        project, selection = self.ctx.project, self.selection()

        def counted(count: int) -> None:
            if selection != self.selection():
                return  # the filter changed meanwhile: a newer count is coming
            self.matching = count
            self.count.setText(f"{count:,} annotation(s) match." if count else "No annotation matches.")
            for button in (self.accept_button, self.reject_button, self.recategorise_button, self.delete_button):
                button.setEnabled(count > 0 and not project.read_only)

        self.jobs.submit("Counting matching annotations",
                         lambda progress, cancel: count_matching(project, selection), counted, visible=False)

    def _where(self) -> str:
        return SCOPES[self.scope.currentIndex()].lower()

    def _review(self, status: AnnotationStatus) -> None:
        ctx, selection = self.ctx, self.selection()
        verb = "Accepting" if status is AnnotationStatus.ACCEPTED else "Rejecting"
        self._start(f"{verb} {self.matching:,} annotation(s)",
                    lambda progress, cancel: review_matching(ctx.project, selection, status, reviewer=ctx.curator,
                                                             session_id=ctx.session_id, progress=progress,
                                                             cancel=cancel))

    def _recategorise(self) -> None:
        project, selection, category = self.ctx.project, self.selection(), self.new_category.currentData()
        if category is None:
            return
        self._start(f"Setting {self.matching:,} annotation(s) to {self.new_category.currentText()}",
                    lambda progress, cancel: recategorise_matching(project, selection, category,
                                                                   progress=progress, cancel=cancel))

    def _delete(self) -> None:
        answer = QMessageBox.question(self, "Delete annotations?",
                                      f"Delete {self.matching:,} annotation(s) ({self._where()})? Undo "
                                      "(Ctrl+Z) brings them back.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        project, selection = self.ctx.project, self.selection()
        self._start(f"Deleting {self.matching:,} annotation(s)",
                    lambda progress, cancel: delete_matching(project, selection, progress=progress, cancel=cancel))

    def _start(self, title: str, work: Callable[[Any, CancelToken], BulkChange]) -> None:
        where = self._where()
        ctx, jobs, undo_stack, notifications = self.ctx, self.jobs, self.undo_stack, self.notifications

        def done(change: BulkChange) -> None:
            undo_stack.push(BulkChangeCommand(ctx, jobs, change))
            ctx.events.annotations_changed.emit(-1)
            notifications.info(f"{change.description} ({where}). Edit ▸ Undo takes it back.")

        jobs.submit(title, _in_turn(work), done, background=True)
        self.accept()
