"""A server the suite needs is started once per run, whichever workers ask for it, and stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.shared_servers import SharedServers, stop_all

REPO = Path(__file__).resolve().parent.parent
ASK_AS_A_WORKER = """
import json, socket, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.shared_servers import SharedServers

def start(folder):
    with (folder.parent / "starts.log").open("a") as log:
        log.write("start\\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return {"pid": server.pid, "port": port}

print(json.dumps(SharedServers(Path(sys.argv[2])).get("http", start)))
"""


def _ask(run: Path) -> dict:
    asked = subprocess.run([sys.executable, "-c", ASK_AS_A_WORKER, str(REPO), str(run)], capture_output=True,
                           text=True, timeout=60)
    assert asked.returncode == 0, asked.stderr
    return json.loads(asked.stdout)


def test_workers_share_one_server_and_the_run_stops_it(tmp_path: Path) -> None:
    with ThreadPoolExecutor(3) as workers:  # three worker processes asking at once
        answers = list(workers.map(_ask, [tmp_path] * 3))
    assert len({(a["pid"], a["port"]) for a in answers}) == 1
    assert (tmp_path / "shared-servers" / "starts.log").read_text().count("start") == 1
    port = answers[0]["port"]
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # it serves after its starter exited
    assert stop_all(tmp_path) == ["http"]
    time.sleep(0.1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        still_listening = True
    except OSError:
        still_listening = False
    assert not still_listening
    assert not list((tmp_path / "shared-servers").glob("*.json"))


def test_a_server_that_died_is_started_again(tmp_path: Path) -> None:
    first = _ask(tmp_path)
    os.killpg(first["pid"], signal.SIGKILL)  # died on its own: its facts are still on disk
    time.sleep(0.1)
    second = _ask(tmp_path)
    assert second["pid"] != first["pid"]
    assert (tmp_path / "shared-servers" / "starts.log").read_text().count("start") == 2
    stop_all(tmp_path)


def test_the_shared_servers_fixture_points_into_this_runs_folder(shared_servers: SharedServers,
                                                                 tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert shared_servers.folder.parent in (base, base.parent)
