"""A real IIIF viewer reads the W3C export: Mirador 3 in headless Chromium loads the exported manifest from a
server on 127.0.0.1, fetches the annotation page and lists the page's annotations with their tags.

Needs Chromium and Mirador's bundle, which CI's machine does not have: set ``MARGINALIA_MIRADOR_JS`` to
``node_modules/mirador/dist/mirador.min.js`` (``npm install mirador@3``) with ``chromium`` on the PATH.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from engine.annotations import Geometry, create_annotation
from engine.categories import add_category
from engine.coco.geometry import rle_from_mask
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.webannotation.export import export_web_annotations

MIRADOR = os.environ.get("MARGINALIA_MIRADOR_JS", "")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not (MIRADOR and Path(MIRADOR).is_file() and CHROMIUM),
                                reason="Mirador's bundle (MARGINALIA_MIRADOR_JS) or Chromium is not here")

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<div id="m" style="position:absolute;width:1200px;height:850px"></div><script src="mirador.min.js"></script>
<script>Mirador.viewer({{id: 'm', windows: [{{manifestId: '{manifest}', canvasIndex: 0}}],
  window: {{sideBarOpenByDefault: true, defaultSideBarPanel: 'annotations', highlightAllAnnotations: true}}}});
</script></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_mirador_lists_the_exported_annotations_of_the_first_canvas(shared_data: Path, project: Project,
                                                                     tmp_path: Path) -> None:
    import_scans(project, [shared_data / "artworks" / "munch_the_scream_1893.jpg"])
    page = list_images(project)[0]
    figure, sky = add_category(project, "figure"), add_category(project, "sky")
    mask = np.zeros((page.height, page.width), np.uint8)
    mask[900:1400, 300:800] = 1
    mask[1000:1100, 400:500] = 0
    create_annotation(project, image_id=page.id, category_id=figure.id, creator="Ada",
                      geometry=Geometry(rle=rle_from_mask(mask)))
    create_annotation(project, image_id=page.id, category_id=sky.id, creator="Ada", geometry=Geometry(
        polygons=[{"exterior": [0, 0, 1200, 0, 1200, 400, 0, 500], "holes": []}]))
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(MIRADOR, root / "mirador.min.js")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        export_web_annotations(project, root / "export", base_url=f"{base}export/")
        (root / "index.html").write_text(PAGE.format(manifest=f"{base}export/manifest.json"), "utf-8")
        shown = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                                "--window-size=1200,850", "--dump-dom", f"{base}index.html"],
                               capture_output=True, text=True, timeout=120, check=False).stdout
    finally:
        server.shutdown()
    assert "Showing 2 annotations" in shown, shown[-2000:]
    assert sorted(re.findall(r">(figure|sky)<", shown)) == ["figure", "sky"]
