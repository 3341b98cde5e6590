"""A real web client in the tests: a folder served on 127.0.0.1 and a page of it loaded in headless Chromium,
its DOM read back once the page's scripts have run (``--virtual-time-budget``)."""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from engine.annotations import Geometry, create_annotation
from engine.categories import add_category
from engine.coco.geometry import rle_from_mask
from engine.project import Project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def served(root: Path) -> Iterator[str]:
    """``root`` served at the address yielded (ending in ``/``) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def dump_dom(url: str, *, budget_ms: int = 20000) -> str:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--virtual-time-budget={budget_ms}",
               "--window-size=1200,850", "--dump-dom", url]
    return subprocess.run(command,
                          capture_output=True, text=True, timeout=120, check=False).stdout


def json_in(dom: str, element_id: str) -> object:
    """The JSON a page's script wrote as the text of ``<pre id=element_id>``."""
    found = re.search(rf'<pre id="{element_id}">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


def annotate_a_figure_and_the_sky(project: Project, page_id: int, width: int, height: int) -> None:
    """Two shapes on the page: a square mask with a square hole ("figure") and a box ("sky")."""
    figure, sky = add_category(project, "figure"), add_category(project, "sky")
    mask = np.zeros((height, width), np.uint8)
    mask[900:1400, 300:800] = 1
    mask[1000:1100, 400:500] = 0
    create_annotation(project, image_id=page_id, category_id=figure.id, creator="Ada",
                      geometry=Geometry(rle=rle_from_mask(mask)))
    create_annotation(project, image_id=page_id, category_id=sky.id, creator="Ada",
                      geometry=Geometry(bbox=(10, 20, 300, 200)))
