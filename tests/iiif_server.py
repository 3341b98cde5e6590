"""A IIIF image server on 127.0.0.1 (a free port) for tests and benches: ``info.json`` for each service,
images and tiles cut from a source image (Image API 2 and 3 URL forms, ``!w,h`` sizes), documents served as
given (manifests, collections), and bad answers on purpose: a web page, 404, 500, a slow answer, a redirect
loop, tiles of the wrong size or cut short."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from engine.iiif.manifest import ImageService

V2 = "http://iiif.io/api/image/2/context.json"
V3 = "http://iiif.io/api/image/3/context.json"


class _QuietAboutHangUps(ThreadingHTTPServer):
    """A client that hangs up before the whole answer is written (the importer refuses a 404 on its status line)
    is not an error of the server: http.server would print a traceback on the test's stderr, which the tests of
    one-line errors read."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class ImageServer:
    def __init__(self, source: Image.Image) -> None:
        self.source = source
        self.requests: Counter[str] = Counter()
        self.infos: dict[str, dict] = {}
        self.lies: set[str] = set()  # services whose tiles come back smaller than asked
        self.truncated: set[str] = set()
        self.trickle: set[str] = set()  # services whose images arrive slowly, a kilobyte every tenth of a second
        self.documents: dict[str, bytes] = {}  # path → JSON served as it is (manifests, collections)
        self.sources: dict[str, Image.Image] = {}  # a service's own image, where not the common one
        self.latency_s = 0.0  # before each image answer: a real server's time to the first byte
        self.encoding = "PNG"  # lossless, so stitched pages can be compared pixel for pixel; benches use JPEG
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests[self.path] += 1
                status, kind, body = server.answer(self.path)
                if kind.startswith("image/") and server.latency_s:
                    time.sleep(server.latency_s)
                if status in (301, 302):
                    self.send_response(status)
                    self.send_header("Location", body.decode())
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.strip("/").partition("/")[0] in server.trickle and kind.startswith("image/"):
                    for start in range(0, len(body), 1024):
                        self.wfile.write(body[start:start + 1024])
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                self.wfile.write(body)

        self.http = _QuietAboutHangUps(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path in self.documents:
            return 200, "application/ld+json", self.documents[path]
        if path == "/web-page":
            return 200, "text/html", b"<!DOCTYPE html><html><body>a viewer</body></html>"
        if path == "/failing":
            return 500, "text/plain", b"oops"
        if path == "/slow":
            time.sleep(2.0)
            return 200, "application/json", b"{}"
        if path == "/loop":
            return 302, "", b"/loop"
        name, _, rest = path.strip("/").partition("/")
        if rest == "info.json" and name in self.infos:
            return 200, "application/ld+json", json.dumps(self.infos[name]).encode()
        parts = rest.split("/")
        if name in self.infos and len(parts) == 4:
            return self.image(name, parts[0], parts[1])
        return 404, "text/plain", b"not here"

    def image(self, name: str, region: str, size: str) -> tuple[int, str, bytes]:
        source = self.sources.get(name, self.source)
        x, y, w, h = (0, 0, *source.size) if region == "full" else tuple(int(v) for v in region.split(","))
        tile = source.crop((x, y, x + w, y + h))
        if size.startswith("!"):  # the largest that fits
            tile.thumbnail(tuple(int(v) for v in size[1:].split(",")))
        if name in self.lies:
            tile = tile.resize((max(1, w // 2), max(1, h // 2)))
        out = io.BytesIO()
        tile.save(out, self.encoding)
        data = out.getvalue()
        return 200, "image/png", data[: len(data) // 2] if name in self.truncated else data

    def service(self, name: str, version: int, source: Image.Image | None = None, **info: object) -> ImageService:
        if source is not None:
            self.sources[name] = source
        width, height = (source or self.source).size
        context = V3 if version == 3 else V2
        key = "id" if version == 3 else "@id"
        self.infos[name] = {"@context": context, key: f"{self.base}/{name}", "width": width, "height": height,
                            **info}
        return ImageService(f"{self.base}/{name}", version, None)
