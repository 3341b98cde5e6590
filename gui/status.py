"""The status bar: tool, zoom, cursor position, session summary and background jobs."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QStatusBar, QToolButton, QWidget

from engine.jobs import JobProgress
from engine.sessions import SessionCounts
from gui.workers import Job, JobRunner


class JobsIndicator(QWidget):
    """The newest visible job with an honest progress bar and a cancel button."""

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(True)
        self.cancel_button = QToolButton(text="Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        jobs.job_started.connect(self._started)
        jobs.job_ended.connect(self._ended)
        self.hide()

    def _started(self, job: Job) -> None:
        if not job.visible:
            return
        self._jobs.append(job)
        job.progressed.connect(lambda progress, job=job: self._progressed(job, progress))
        self._refresh()

    def _ended(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
            self._refresh()

    def _progressed(self, job: Job, progress: JobProgress) -> None:
        if self._jobs and self._jobs[-1] is job:
            self._show(job, progress)

    def _refresh(self) -> None:
        if not self._jobs:
            self.hide()
            return
        job = self._jobs[-1]
        self._show(job, job.last_progress)
        self.show()

    def _show(self, job: Job, progress: JobProgress | None) -> None:
        more = f" (+{len(self._jobs) - 1} more)" if len(self._jobs) > 1 else ""
        self.label.setText(f"{job.title}{more}")
        if progress is None or progress.total == 0:
            self.bar.setRange(0, 0)  # busy: the job has not said how much there is
        else:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
            self.bar.setFormat(f"{progress.done}/{progress.total}")
        self.bar.setToolTip(progress.message if progress else "")

    def _cancel(self) -> None:
        if self._jobs:
            self._jobs[-1].cancel()
            self.label.setText(f"Cancelling {self._jobs[-1].title}…")


class StatusBar(QStatusBar):
    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tool_label = QLabel("Select")
        self.zoom_label = QLabel("–")
        self.position_label = QLabel("")
        self.position_label.setMinimumWidth(120)
        self.session_label = QLabel("")
        # The review queue's count, while reviewing one by one: permanent, so that passing messages
        # (which hide ordinary status-bar widgets) never hide it.
        self.review_label = QLabel("")
        self.review_label.setStyleSheet("font-weight: bold")
        self.review_label.hide()
        self.jobs = JobsIndicator(jobs)
        self._permanent = (self.review_label, self.tool_label, self.zoom_label, self.position_label,
                           self.session_label, self.jobs)
        for widget in self._permanent:
            self.addPermanentWidget(widget)
        self._message = ""

    def showMessage(self, message: str, timeout: int = 0) -> None:  # noqa: N802
        """A passing message, shortened with "…" to the room left of the permanent labels (Qt would cut it
        off against them); the whole of it in the tooltip and in :meth:`currentMessage`."""
        self._message = message
        shown = self._fitted(message)
        self.setToolTip(message if shown != message else "")
        super().showMessage(shown, timeout)

    def currentMessage(self) -> str:  # noqa: N802
        shown = super().currentMessage()
        return self._message if shown else ""

    def _fitted(self, message: str) -> str:
        # From the labels' wanted widths, not their places: a label whose text just changed is not laid out yet.
        used = sum(widget.sizeHint().width() + self.layout().spacing() + 8
                   for widget in self._permanent if not widget.isHidden())
        room = self.width() - used - 32
        return self.fontMetrics().elidedText(message, Qt.TextElideMode.ElideRight, max(room, 40))

    def set_tool(self, label: str) -> None:
        self.tool_label.setText(f"Tool: {label}")

    def set_zoom(self, factor: float) -> None:
        self.zoom_label.setText(f"{factor * 100:.0f} %")

    def set_position(self, point: QPointF | None) -> None:
        self.position_label.setText("" if point is None else f"x {int(point.x())}, y {int(point.y())} px")

    def set_session(self, curator: str, counts: SessionCounts | None) -> None:
        if counts is None:
            self.session_label.setText("")
            return
        self.session_label.setText(
            f"{curator}: {counts.created} drawn · {counts.accepted} accepted · {counts.rejected} rejected")
        self.session_label.setToolTip("This session's work (since the project was opened)")
