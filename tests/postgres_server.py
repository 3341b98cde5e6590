"""A real PostgreSQL server for the tests, in a folder of the run's, on a free loopback port.

The server binaries are Debian's (``make test`` installs the ``postgresql`` package where they are missing), found
in ``MARGINALIA_PG_BIN``, ``/usr/lib/postgresql/*/bin`` or on the ``PATH``. PostgreSQL refuses to run as root, so a
root test run starts it as the ``postgres`` account. The superuser has a password (scram-sha-256 over TCP): the
tests connect as clients do, with the password in a pgpass file, never in a URL.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SUPERUSER = "marginalia_test_admin"


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``; a plain error says how to get them."""
    candidates: list[Path] = []
    if os.environ.get("MARGINALIA_PG_BIN"):
        candidates.append(Path(os.environ["MARGINALIA_PG_BIN"]))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: _major(path.parent.name),
                         reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise RuntimeError("No PostgreSQL server binaries (initdb, postgres) were found: install Debian's 'postgresql' "
                       "package (make test does so) or set MARGINALIA_PG_BIN to their folder.")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _account() -> dict[str, Any]:
    """Popen's arguments that drop root to the ``postgres`` account; none for anyone else."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _hand_over(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(folder: Path, *, port: int | None = None) -> dict[str, Any]:
    """initdb (once) and start a server in ``folder``; its facts: pid, host, port, superuser, password, folder.

    Run as root, the server's files go in a folder of their own under the system's temporary folder instead
    (``remove_after`` in the facts), since pytest's folders are closed to the ``postgres`` account."""
    binaries = server_binaries()
    home = str(folder)  # what to pass again to start the same server after stopping it
    remove_after = None
    if os.geteuid() == 0:
        marker = folder / "server-folder"
        if marker.is_file() and Path(marker.read_text(encoding="utf-8")).is_dir():
            folder = Path(marker.read_text(encoding="utf-8"))
        else:
            folder.mkdir(parents=True, exist_ok=True)
            # Not under TMPDIR, which a test run points into pytest's folders (closed to other accounts).
            own = Path(tempfile.mkdtemp(prefix="marginalia-postgres-", dir="/tmp" if Path("/tmp").is_dir() else None))
            marker.write_text(str(own), encoding="utf-8")
            folder = own
        remove_after = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    data, sockets = folder / "data", folder / "sockets"
    password_file = folder / "superuser-password"
    if not (data / "PG_VERSION").is_file():
        password_file.write_text(secrets.token_urlsafe(18), encoding="utf-8")
        for path in (data, sockets):
            path.mkdir(exist_ok=True)
            _hand_over(path)
        _hand_over(password_file)
        made = subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile",
                               str(password_file), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                               "--locale=C.UTF-8", "--no-sync"], capture_output=True, **_account())
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.decode(errors='replace')[-2000:]}")
    tls = _certificate(folder)
    port = port or free_port()
    log = (folder / "server.log").open("ab")
    process = subprocess.Popen(
        [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
         "-c", "max_connections=200", "-c", "shared_buffers=64MB", *tls],
        stdout=log, stderr=log, start_new_session=True, **_account())
    facts = {"pid": process.pid, "host": "127.0.0.1", "port": port, "superuser": SUPERUSER,
             "password": password_file.read_text(encoding="utf-8").strip(), "folder": str(folder),
             "bin": str(binaries), "remove_after": remove_after, "home": home}
    _wait_until_up(facts, process)
    return facts


def _certificate(folder: Path) -> list[str]:
    """A self-signed certificate, so that clients may ask for TLS (``sslmode=require``); none where openssl is
    missing (TLS is then untested, and said so by the test that needs it)."""
    key, certificate = folder / "server.key", folder / "server.crt"
    if not certificate.is_file():
        if not shutil.which("openssl"):
            return []
        made = subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                               "-keyout", str(key), "-out", str(certificate)], capture_output=True)
        if made.returncode != 0:
            return []
        key.chmod(0o600)
        for path in (key, certificate):
            _hand_over(path)
    return ["-c", "ssl=on", "-c", f"ssl_cert_file={certificate}", "-c", f"ssl_key_file={key}"]


def _wait_until_up(facts: dict[str, Any], process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(**superuser_connection(facts), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = Path(facts["folder"], "server.log").read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {log}") from None
            time.sleep(0.1)


def superuser_connection(facts: dict[str, Any], dbname: str = "postgres") -> dict[str, Any]:
    return {"host": facts["host"], "port": facts["port"], "user": facts["superuser"], "password": facts["password"],
            "dbname": dbname, "autocommit": True}


def stop_postgres(facts: dict[str, Any], *, mode: str = "fast") -> None:
    """Stop a server this module started: ``fast`` (clients disconnected, clean), or ``immediate`` (as a crash)."""
    account = _account()
    subprocess.run([str(Path(facts["bin"]) / "pg_ctl"), "stop", "-D", str(Path(facts["folder"]) / "data"),
                    "-m", mode, "-w", "-t", "60"], check=True, capture_output=True, **account)
