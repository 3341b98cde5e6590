"""The open page's lease in a team project (:mod:`engine.leases`): taken when a page opens, renewed while it stays
open, given back when the window moves on or closes; a page another window holds is said to be theirs (it still
opens)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from engine.errors import MarginaliaError
from engine.leases import RENEW_S, Lease, release_lease, take_lease
from engine.project import Project
from gui.commands import EditContext
from gui.workers import JobRunner


class PageLeaseKeeper(QObject):
    def __init__(self, jobs: JobRunner, say: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._say = say  # tells the curator who holds a page they opened
        self._project: Project | None = None
        self._holder = self._client = ""
        self.image_id: int | None = None
        self.held_by_other: Lease | None = None
        self._renewal = QTimer(self, interval=int(RENEW_S * 1000))
        self._renewal.timeout.connect(self._take)

    def attach(self, ctx: EditContext | None) -> None:
        """Work for ``ctx``'s project, as its curator and window (``None``: give back the lease held, synchronously:
        the project is closing)."""
        if self._project is not None and self.image_id is not None and self.held_by_other is None:
            self._give_back(self._project, self.image_id, self._client)
        self._renewal.stop()
        self.image_id, self.held_by_other = None, None
        # Team projects only (a single-file project has one computer); a viewer reviews nothing.
        reviewing = ctx is not None and ctx.project.is_team and not ctx.project.read_only
        self._project = ctx.project if ctx is not None and reviewing else None
        self._holder, self._client = (ctx.curator, ctx.client) if ctx is not None else ("", "")

    def hold(self, image_id: int) -> None:
        """The window has moved to ``image_id``: give back the previous page's lease and take this one's."""
        project = self._project
        if project is None or image_id == self.image_id:
            return
        previous, client = self.image_id, self._client
        self.image_id, self.held_by_other = image_id, None
        if previous is not None:
            self._jobs.submit("Giving back a page", lambda progress, cancel: self._give_back(project, previous, client),
                              visible=False, on_failure=_lapse)
        self._take()
        self._renewal.start()

    def _take(self) -> None:
        project, image_id, holder, client = self._project, self.image_id, self._holder, self._client
        if project is None or image_id is None:
            return

        def taken(other: Lease | None) -> None:
            if image_id != self.image_id:
                return
            told = other is not None and (self.held_by_other is None or self.held_by_other.client != other.client)
            self.held_by_other = other
            if told:
                self._say(f"{other.describe()}. You can look and edit; the review queue leaves it to them.")

        self._jobs.submit("Taking the page", lambda progress, cancel: take_lease(project, image_id, holder, client),
                          taken, visible=False, on_failure=_lapse)

    @staticmethod
    def _give_back(project: Project, image_id: int, client: str) -> None:
        try:
            release_lease(project, image_id, client)
        except MarginaliaError:
            pass  # a lost connection: the lease lapses by itself


def _lapse(_message: str) -> None:
    """A lease that could not be taken or given back (a lost connection): the next renewal tries again, and a
    lease nobody renews lapses by itself; nothing for the curator to do."""
