"""Other curators' changes to a team project, as they are committed (PostgreSQL ``LISTEN``/``NOTIFY``).

The database tells every listener which page's annotations (or which page, or the categories) a committed
statement changed (revision 0006's triggers). :class:`ChangeListener` listens on a connection of its own, in a
thread, and hands each notice to a callback; notices of this project object's own connections are left out
(its windows show their own edits already). A lost connection is made again, with a growing pause, and the
callback is then told that anything may have changed (``image_id=None``), since notices sent meanwhile are lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

CHANNEL = "marginalia_changes"
_WAIT_S = 0.25  # how long one wait for notices lasts: stop() takes effect within it
_RETRY_S = (0.5, 1.0, 2.0, 5.0)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    table: str  # "annotation", "image" or "category"; "*" after a reconnection (anything may have changed)
    image_id: int | None
    ids: tuple[int, ...] | None = None  # the annotations changed on the page; None: read the page again


def track_own_connections(engine: Engine) -> set[int]:
    """The server process ids of ``engine``'s connections, kept up to date (notices they cause are our own)."""
    own: set[int] = set()

    def remember(dbapi_connection: Any, _record: Any) -> None:
        own.add(int(dbapi_connection.info.backend_pid))

    event.listen(engine, "connect", remember)
    return own


class ChangeListener:
    def __init__(self, conninfo: str, own_pids: set[int], on_change: Callable[[Change], None]) -> None:
        self._conninfo = conninfo
        self._own = own_pids
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="team changes", daemon=True)
        self.listening = threading.Event()  # set while a connection is listening (tests wait on it)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                                     application_name="Marginalia (changes)") as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        self._on_change(Change("*", None))  # notices sent while we were away are lost
                    failures = 0
                    self.listening.set()
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=_WAIT_S):
                            if notice.pid not in self._own:
                                self._on_change(_parsed(notice.payload))
            except psycopg.Error as error:
                self.listening.clear()
                log.info("listening for team changes: %s", error)
                failures += 1
                self._stop.wait(_RETRY_S[min(failures, len(_RETRY_S)) - 1])


def _parsed(payload: str) -> Change:
    try:
        facts = json.loads(payload)
        image, ids = facts.get("image"), facts.get("ids")
        return Change(str(facts.get("table", "*")), int(image) if image is not None else None,
                      tuple(int(i) for i in ids) if isinstance(ids, list) else None)
    except (ValueError, TypeError, AttributeError):
        return Change("*", None)
