"""File ▸ Import from IIIF… in the app: a collection's address offers its manifests; choosing one imports its
canvases as pages in the gallery (a local image server on 127.0.0.1 serves them)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PySide6.QtWidgets import QInputDialog

from engine.project import Project
from tests.iiif_server import ImageServer


def _serve(shared_data: Path) -> tuple[ImageServer, str]:
    scan = Image.open(shared_data / "manuscripts" / "dannhauer_catechismus04_1653_0585.jpg").convert("RGB")
    server = ImageServer(scan.crop((0, 0, 300, 200)))
    canvases = []
    for number in range(2):
        service = server.service(f"p{number}", 3, source=scan.crop((number * 40, 0, 300 + number * 40, 200)),
                                 profile="level2")
        canvases.append({"id": f"{server.base}/c{number}", "type": "Canvas", "label": {"none": [f"f. {number + 1}"]},
                         "width": 300, "height": 200, "items": [{"id": f"{server.base}/c{number}/p",
                                                                 "type": "AnnotationPage", "items": [
                             {"id": f"{server.base}/c{number}/a", "type": "Annotation", "motivation": "painting",
                              "target": f"{server.base}/c{number}",
                              "body": {"id": f"{service.id}/full/max/0/default.jpg", "type": "Image",
                                       "service": [{"id": service.id, "type": "ImageService3"}]}}]}]})
    server.documents["/m.json"] = json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                              "id": f"{server.base}/m.json", "type": "Manifest",
                                              "label": {"en": ["Catechismus"]}, "items": canvases}).encode()
    server.documents["/c.json"] = json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                              "id": f"{server.base}/c.json", "type": "Collection",
                                              "label": {"en": ["Prints"]},
                                              "items": [{"id": f"{server.base}/m.json", "type": "Manifest",
                                                         "label": {"en": ["Catechismus"]}}]}).encode()
    return server, f"{server.base}/c.json"


def test_a_collection_offers_its_manifest_and_choosing_it_imports_the_pages(qtbot, window, tmp_path: Path,
                                                                             shared_data: Path, monkeypatch) -> None:
    server, collection = _serve(shared_data)
    try:
        Project.create(tmp_path / "project").close()
        with qtbot.waitSignal(window.project_opened, timeout=10_000):
            window.open_project(tmp_path / "project")
        asked: list[str] = []

        def give_address(parent, title, label, echo, text):  # noqa: ANN001, ANN202 - QInputDialog's
            asked.append(title)
            return collection, True

        monkeypatch.setattr(QInputDialog, "getText", give_address)
        window.actions_by_name["import-iiif"].trigger()

        def offers() -> list:
            return [n for n in window.notifications.notifications() if "is a IIIF collection" in n.label.text()]

        qtbot.waitUntil(lambda: len(offers()) == 1, timeout=20_000)
        (choose,) = [button for button in offers()[0].buttons if button.text() == "Import Catechismus"]
        choose.click()
        qtbot.waitUntil(lambda: len(window.gallery.model.rows()) == 2, timeout=30_000)
        assert asked == ["Import from IIIF"]
        assert sorted(row.title for row in window.gallery.model.rows()) == ["Catechismus, f. 1", "Catechismus, f. 2"]
    finally:
        server.http.shutdown()
