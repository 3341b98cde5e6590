"""A real annotation client reads the W3C export and what it writes comes back: Annotorious 2 in headless
Chromium, over the exported image, draws each exported shape (the mask as an SVG path with its hole, the box
as a rectangle) at its pixels; the annotations it hands back (``getAnnotations()``, what it saves) import
into another project holding the same scan as the same shapes.

Needs Chromium and Annotorious's bundle, which CI's machine does not have: set ``MARGINALIA_ANNOTORIOUS_JS``
to ``node_modules/@recogito/annotorious/dist/annotorious.min.js`` (``npm install @recogito/annotorious@2``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from engine.annotations import annotations_of
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.project import Project
from engine.webannotation.export import export_web_annotations
from engine.webannotation.importer import import_web_annotations
from tests.browser import CHROMIUM, annotate_a_figure_and_the_sky, dump_dom, json_in, served

ANNOTORIOUS = os.environ.get("MARGINALIA_ANNOTORIOUS_JS", "")
pytestmark = pytest.mark.skipif(not (ANNOTORIOUS and Path(ANNOTORIOUS).is_file() and CHROMIUM),
                                reason="Annotorious's bundle (MARGINALIA_ANNOTORIOUS_JS) or Chromium is not here")

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="annotorious.min.css">
</head><body><pre id="out">null</pre><img id="page" src="{image}"><script src="annotorious.min.js"></script>
<script>
const out = document.getElementById('out');
window.onerror = (message) => {{ out.textContent = JSON.stringify({{error: String(message)}}); }};
const anno = Annotorious.init({{image: 'page', readOnly: true}});
fetch('{annotations}').then(answer => answer.json()).then(page => {{
  anno.setAnnotations(page.items);
  setTimeout(() => {{ out.textContent = JSON.stringify({{
    drawn: [...document.querySelectorAll('.a9s-annotation .a9s-inner')].map(shape => ({{
      kind: shape.nodeName, d: shape.getAttribute('d'),
      box: ['x', 'y', 'width', 'height'].map(name => Number(shape.getAttribute(name)))}})),
    written: anno.getAnnotations()}}); }}, 500);
}});
</script></body></html>"""


def test_annotorious_draws_the_export_and_what_it_writes_comes_back(shared_data: Path, tmp_path: Path) -> None:
    scan = shared_data / "artworks" / "munch_the_scream_1893.jpg"
    with Project.create(tmp_path / "here") as project:
        import_scans(project, [scan])
        page = list_images(project)[0]
        annotate_a_figure_and_the_sky(project, page.id, page.width, page.height)
        root = tmp_path / "site"
        root.mkdir()
        for name in ("annotorious.min.js", "annotorious.min.css"):
            shutil.copy(Path(ANNOTORIOUS).with_name(name), root / name)
        with served(root) as base:
            export_web_annotations(project, root / "export", base_url=f"{base}export/")
            [annotations] = (root / "export" / "annotations").glob("*.json")
            (root / "index.html").write_text(PAGE.format(image=f"export/images/{scan.name}",
                                                         annotations=f"export/annotations/{annotations.name}"))
            seen = json_in(dump_dom(f"{base}index.html"), "out")
    assert isinstance(seen, dict) and "error" not in seen, seen
    exported = json.loads(annotations.read_text("utf-8"))["items"]
    mask_path = next(re.search(r' d="([^"]+)"', selector["value"]).group(1) for annotation in exported
                     for selector in annotation["target"]["selector"] if selector["type"] == "SvgSelector"
                     and annotation["body"][0]["value"] == "figure")
    drawn = sorted(seen["drawn"], key=lambda shape: shape["kind"])
    assert [shape["kind"] for shape in drawn] == ["path", "rect"]
    assert drawn[0]["d"] == mask_path and mask_path.count("M") == 2  # the outline and its hole
    assert drawn[1]["box"] == [10, 20, 300, 200]

    written = tmp_path / "annotorious-saved.json"
    written.write_text(json.dumps(seen["written"]), "utf-8")
    with Project.create(tmp_path / "there") as other:
        import_scans(other, [scan])
        report = import_web_annotations(other, [written])
        assert (report.added, report.refused) == (2, []), report.summary()
        came = {annotation.bbox: annotation for annotation in annotations_of(other, list_images(other)[0].id)}
    assert set(came) == {(10.0, 20.0, 300.0, 200.0), (300.0, 900.0, 500.0, 500.0)}
    assert came[(10.0, 20.0, 300.0, 200.0)].is_box
    assert abs(came[(300.0, 900.0, 500.0, 500.0)].area - (500 * 500 - 100 * 100)) < 0.01 * 240_000
