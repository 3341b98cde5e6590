"""A fake Hugging Face hub on 127.0.0.1, serving files under the hub's URL layout.

``/{repo_id}/resolve/{revision}/{filename}`` answers HEAD and GET (with byte
ranges, for resumed downloads) like the real hub's file endpoint, with the
headers huggingface_hub reads (``X-Repo-Commit``, ``ETag`` = sha256 for large
files). It can drop a connection part-way to test resuming, and answers 404
for anything it does not hold. It listens only on the loopback address and
stops with the test.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")


@dataclass
class FakeHub:
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (repo, filename) -> bytes
    drop_after: dict[tuple[str, str], int] = field(default_factory=dict)  # first GET stops there
    tamper: dict[tuple[str, str], bytes] = field(default_factory=dict)  # served instead, same headers
    seconds_per_chunk: float = 0.0  # slows bodies down (64 KiB chunks) so that tests can cancel
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, range
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: str, filename: str, data: bytes) -> str:
        self.files[(repo, filename)] = data
        return hashlib.sha256(data).hexdigest()

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> tuple[tuple[str, str], bytes] | None:
                path = self.path.split("?")[0]
                match = _PATH.match(path)
                key = (match["repo"], match["filename"]) if match else ("", path.lstrip("/"))
                data = hub.files.get(key)
                return (key, data) if data is not None else None

            def _headers(self, data: bytes, status: int, start: int = 0) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()

            def _missing(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                hub.requests.append(("HEAD", self.path, None))
                found = self._lookup()
                if found is None:
                    self._missing()
                    return
                self._headers(found[1], 200)

            def do_GET(self) -> None:  # noqa: N802
                byte_range = self.headers.get("Range")
                hub.requests.append(("GET", self.path, byte_range))
                found = self._lookup()
                if found is None:
                    self._missing()
                    return
                key, data = found
                start = int(byte_range.split("=")[1].split("-")[0]) if byte_range else 0
                self._headers(data, 206 if start else 200, start)
                limit = hub.drop_after.pop(key, None)
                data = hub.tamper.get(key, data)
                body = data[start:] if limit is None else data[start:limit]
                for offset in range(0, len(body), 1 << 16):
                    self.wfile.write(body[offset:offset + (1 << 16)])
                    if hub.seconds_per_chunk:
                        time.sleep(hub.seconds_per_chunk)
                if limit is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: stop() waits for the serving loop's next look, half a second at the default.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
