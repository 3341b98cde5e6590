"""IIIF import throughput from a local image server, against a plain parallel download of the same requests.

A server on 127.0.0.1 (tests/iiif_server.py, in this process's threads) serves a manifest of canvases whose
images are crops of a shared scan, as level-0 tiles (JPEG, cut and encoded as they are asked for, as a
server does). The import fetches, checks, stitches and stores each page and imports it; the baseline fetches
the same tiles with the same parallelism and does nothing with them. One JSON line:

- ``pages_per_s``: canvases imported per second (fetch, stitch, PNG write, scan import);
- ``download_pages_per_s``: the same tiles fetched only, as fast as the server gives them;
- ``import_vs_download``: the import's time over the download's (1.0: the server is the limit);
- the same three with ``_latent`` appended, from a server that waits ``--latency-ms`` before each image (the
  time to the first byte of a real server's tile, an assumption: none can be reached from here). Against the
  loopback server, which answers at once, the client's own work (decoding tiles, lossless storage, thumbnails)
  is all there is to see; against a latent one, whether that work hides behind the waiting.

    .venv/bin/python bench/iiif.py [--canvases 20] [--side 3000] [--latency-ms 100] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import add_smoke_flag, cpu_flags, emit  # noqa: E402
from PIL import Image  # noqa: E402

from engine.iiif.fetch import fetch  # noqa: E402
from engine.iiif.image_api import PARALLEL_TILES, plan, read_info  # noqa: E402
from engine.iiif.importer import import_manifest  # noqa: E402
from engine.project import Project  # noqa: E402
from tests.iiif_server import ImageServer  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TILE = 512


def _serve(canvases: int, side: int) -> tuple[ImageServer, str]:
    scan = Image.open(SHARED / "manuscripts" / "bengel_abriss01_1751_0007.jpg").convert("RGB")
    scale = side / max(scan.size)
    scan = scan.resize((round(scan.width * scale), round(scan.height * scale)))
    server = ImageServer(scan)
    server.encoding = "JPEG"
    items = []
    for number in range(canvases):
        page = scan.rotate(number * 0.5)  # distinct pages of one size
        service = server.service(f"p{number}", 3, source=page, profile="level0",
                                 tiles=[{"width": TILE, "scaleFactors": [1, 2, 4]}])
        items.append({"id": f"{server.base}/c{number}", "type": "Canvas", "label": {"none": [f"p. {number + 1}"]},
                      "width": page.width, "height": page.height,
                      "items": [{"id": f"{server.base}/c{number}/p", "type": "AnnotationPage", "items": [
                          {"id": f"{server.base}/c{number}/a", "type": "Annotation", "motivation": "painting",
                           "target": f"{server.base}/c{number}",
                           "body": {"id": f"{service.id}/full/max/0/default.jpg", "type": "Image",
                                    "service": [{"id": service.id, "type": "ImageService3"}]}}]}]})
    server.documents["/manifest.json"] = json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{server.base}/manifest.json",
        "type": "Manifest", "label": {"en": ["Bench"]}, "items": items}).encode()
    return server, f"{server.base}/manifest.json"


def _download(server: ImageServer, canvases: int) -> float:
    """The same tiles fetched with the same parallelism, kept nowhere."""
    from engine.iiif.manifest import ImageService

    started = time.perf_counter()
    for number in range(canvases):
        service = ImageService(f"{server.base}/p{number}", 3)
        info = read_info(fetch(f"{service.id}/info.json").data, service, "info.json")
        with ThreadPoolExecutor(max_workers=PARALLEL_TILES) as pool:
            list(pool.map(lambda request: fetch(request.url).data, plan(info)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canvases", type=int, default=20)
    parser.add_argument("--side", type=int, default=3000, help="the longer side of each page, in pixels")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the latent server's wait before each image")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.canvases, args.side = 2, 700
    server, manifest = _serve(args.canvases, args.side)
    figures: dict[str, object] = {}
    try:
        for latency_ms, ending in ((0.0, ""), (args.latency_ms, "_latent")):
            server.latency_s = latency_ms / 1000
            download_s = _download(server, args.canvases)
            import_s, requests = _import(manifest, args.canvases)
            figures |= {f"pages_per_s{ending}": round(args.canvases / import_s, 3),
                        f"download_pages_per_s{ending}": round(args.canvases / download_s, 3),
                        f"import_vs_download{ending}": round(import_s / download_s, 3)}
    finally:
        server.http.shutdown()
    emit({"bench": "iiif", "canvases": args.canvases, "side": args.side, "tile": TILE,
          "parallel_tiles": PARALLEL_TILES, "cpu_flags": cpu_flags(), **figures, "requests": requests,
          "server_latency_ms": args.latency_ms})


def _import(manifest: str, canvases: int) -> tuple[float, int]:
    """Seconds to import the manifest into a new project, and the requests it made."""
    with tempfile.TemporaryDirectory() as scratch:
        project = Project.create(Path(scratch) / "project")
        with project:
            started = time.perf_counter()
            report = import_manifest(project, manifest)
            import_s = time.perf_counter() - started
    if report.pages_added != canvases or report.failed:
        sys.exit(f"bench/iiif.py: {report.summary()}")
    return import_s, report.requests


if __name__ == "__main__":
    main()
