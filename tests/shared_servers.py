"""Servers the suite needs (a PostgreSQL, a local Ray, an HTTP server for IIIF), started once per test run and
shared by every pytest-xdist worker: adding one costs its start-up once, not once per test or per worker.

    @pytest.fixture(scope="session")
    def postgres(shared_servers):
        return shared_servers.get("postgres", start_postgres)

``start(folder)`` starts the server as a process of its own, in a new session (so that it outlives the worker
that started it), listening on 127.0.0.1 only; it waits until the server answers and returns what clients need
as JSON-able facts, the process id under ``"pid"`` (and a folder to delete once it has stopped under
``"remove_after"``, if any). The first worker to ask starts it, under a file lock; the
others read its facts. When the whole run ends, its controller stops every server started for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

FOLDER = "shared-servers"
Facts = dict[str, Any]


class SharedServers:
    def __init__(self, run_folder: Path) -> None:
        self.folder = run_folder / FOLDER

    def get(self, name: str, start: Callable[[Path], Facts], *, timeout: float = 180.0) -> Facts:
        """The running server ``name``'s facts, starting it with ``start`` if no worker has yet."""
        self.folder.mkdir(parents=True, exist_ok=True)
        facts_file = self.folder / f"{name}.json"
        with FileLock(str(self.folder / f"{name}.lock"), timeout=timeout):
            if facts_file.is_file():
                facts = json.loads(facts_file.read_text(encoding="utf-8"))
                if _alive(int(facts["pid"])):
                    return facts
            data = self.folder / name
            data.mkdir(exist_ok=True)
            facts = start(data)
            if not isinstance(facts.get("pid"), int):
                raise ValueError(f"starting {name} gave no process id: {facts}")
            facts_file.write_text(json.dumps(facts), encoding="utf-8")
            return facts


def run_folder(config: Any) -> Path:
    """The folder this whole run shares: the controller's base temporary folder (xdist puts each worker's
    beneath it)."""
    basetemp = config._tmp_path_factory.getbasetemp()
    return basetemp.parent if hasattr(config, "workerinput") else basetemp


def stop_all(folder: Path, *, grace_s: float = 10.0) -> list[str]:
    """Stop every server started for the run in ``folder`` (terminate, then kill); the names stopped."""
    stopped = []
    for facts_file in sorted((folder / FOLDER).glob("*.json")):
        facts = json.loads(facts_file.read_text(encoding="utf-8"))
        pid = int(facts["pid"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        facts_file.unlink()
        if facts.get("remove_after"):  # a server's files kept outside the run's folder
            shutil.rmtree(facts["remove_after"], ignore_errors=True)
        stopped.append(facts_file.stem)
    return stopped


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that has exited: reaped now
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers signals; where no init reaps it (a container), it has still exited
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
