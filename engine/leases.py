"""Who is reviewing a page: a lease, taken by a window when it opens a page and renewed while it stays open.

A lease lasts :data:`LEASE_S` from its last renewal, so one left by a crashed computer lapses by itself; a window
renews it every :data:`RENEW_S` and gives it back when it leaves the page or closes. A page leased by another
window is still open to everyone (nothing is locked): the window says who holds it, and the review queue leaves
it out, so that two curators are not handed the same page. ``client`` names one window (a curator may have two).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from engine.project import Project
from engine.store.schema import PageLease
from engine.store.types import utc_now

LEASE_S = 120.0
RENEW_S = 40.0


@dataclass(frozen=True)
class Lease:
    image_id: int
    holder: str
    client: str
    expires_at: datetime

    def describe(self) -> str:
        until = self.expires_at.astimezone().strftime("%H:%M")
        return f"{self.holder} is reviewing this page (held until {until} unless renewed)"


def take_lease(project: Project, image_id: int, holder: str, client: str, *, seconds: float = LEASE_S) -> Lease | None:
    """Take or renew ``client``'s lease of the page; where another window holds a live one, nothing changes and
    that lease is returned."""
    for _ in range(2):  # a second try where another window took the page between our read and our insert
        try:
            with project.unit_of_work() as session:
                now = utc_now()
                row = session.get(PageLease, image_id, with_for_update=True)
                if row is not None and row.client != client and row.expires_at > now:
                    return Lease(row.image_id, row.holder, row.client, row.expires_at)
                expires = now + timedelta(seconds=seconds)
                if row is None:
                    session.add(PageLease(image_id=image_id, holder=holder, client=client, taken_at=now,
                                          expires_at=expires))
                else:
                    if row.client != client:
                        row.taken_at = now
                    row.holder, row.client, row.expires_at = holder, client, expires
            return None
        except IntegrityError:
            continue
    return leases_of_others(project, client).get(image_id)


def release_lease(project: Project, image_id: int, client: str) -> None:
    with project.unit_of_work() as session:
        session.execute(delete(PageLease).where(PageLease.image_id == image_id, PageLease.client == client))


def leases_of_others(project: Project, client: str) -> dict[int, Lease]:
    """The live leases of every window but ``client``, by page."""
    with project.unit_of_work() as session:
        rows = session.scalars(select(PageLease).where(PageLease.client != client,
                                                       PageLease.expires_at > utc_now())).all()
        return {row.image_id: Lease(row.image_id, row.holder, row.client, row.expires_at) for row in rows}
