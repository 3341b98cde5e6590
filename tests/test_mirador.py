"""A real IIIF viewer reads the W3C export: Mirador 3 in headless Chromium loads the exported manifest from a
server on 127.0.0.1, fetches the annotation page, lists the page's annotations with their tags and strokes
each shape's SVG path onto its canvas overlay (counted by wrapping the page's 2D canvas ``stroke``).

Needs Chromium and Mirador's bundle, which CI's machine does not have: set ``MARGINALIA_MIRADOR_JS`` to
``node_modules/mirador/dist/mirador.min.js`` (``npm install mirador@3``) with ``chromium`` on the PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.webannotation.export import export_web_annotations
from tests.browser import CHROMIUM, annotate_a_figure_and_the_sky, dump_dom, json_in, served

MIRADOR = os.environ.get("MARGINALIA_MIRADOR_JS", "")
pytestmark = pytest.mark.skipif(not (MIRADOR and Path(MIRADOR).is_file() and CHROMIUM),
                                reason="Mirador's bundle (MARGINALIA_MIRADOR_JS) or Chromium is not here")

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="drawn">[]</pre>
<script>// every SVG path Mirador strokes onto its canvas overlay, written where --dump-dom shows it
const drawn = new Set(), Plain = window.Path2D;
window.Path2D = class extends Plain {{ constructor(d) {{ super(d); this.d = d; }} }};
const stroke = CanvasRenderingContext2D.prototype.stroke;
CanvasRenderingContext2D.prototype.stroke = function (path) {{
  if (path && path.d) {{
    drawn.add(path.d);
    document.getElementById('drawn').textContent = JSON.stringify([...drawn]);
  }}
  return stroke.apply(this, arguments);
}};
</script>
<div id="m" style="position:absolute;width:1200px;height:850px"></div><script src="mirador.min.js"></script>
<script>Mirador.viewer({{id: 'm', windows: [{{manifestId: '{manifest}', canvasIndex: 0}}],
  window: {{sideBarOpenByDefault: true, defaultSideBarPanel: 'annotations', highlightAllAnnotations: true}}}});
</script></body></html>"""


def test_mirador_lists_and_draws_the_exported_annotations_of_the_first_canvas(shared_data: Path, project: Project,
                                                                               tmp_path: Path) -> None:
    """Seconds: a browser starts and Mirador renders."""
    import_scans(project, [shared_data / "artworks" / "munch_the_scream_1893.jpg"])
    page = list_images(project)[0]
    annotate_a_figure_and_the_sky(project, page.id, page.width, page.height)
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(MIRADOR, root / "mirador.min.js")
    with served(root) as base:
        export_web_annotations(project, root / "export", base_url=f"{base}export/")
        (root / "index.html").write_text(PAGE.format(manifest=f"{base}export/manifest.json"), "utf-8")
        shown = dump_dom(f"{base}index.html")
    assert "Showing 2 annotations" in shown, shown[-2000:]
    assert sorted(re.findall(r">(figure|sky)<", shown)) == ["figure", "sky"]
    exported = [selector["value"] for path in (root / "export" / "annotations").glob("*.json")
                for annotation in json.loads(path.read_text("utf-8"))["items"]
                for selector in annotation["target"]["selector"] if selector["type"] == "SvgSelector"]
    drawn = json_in(shown, "drawn")
    # both shapes drawn on the canvas, each from the path exported (holes and all), nothing else
    assert isinstance(drawn, list) and len(drawn) == 2
    assert sorted(drawn) == sorted(re.search(r' d="([^"]+)"', svg).group(1) for svg in exported)
