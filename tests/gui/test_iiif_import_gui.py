"""File ▸ Import from IIIF… in the app: a collection's address offers its manifests; choosing one imports its
canvases as pages in the gallery (a local image server on 127.0.0.1 serves them); the dialog's canvas range and
size are what is fetched; File ▸ Export IIIF with Web Annotations… and Import W3C Web Annotations… take a
page's shapes out onto its canvas and back."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog

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

        def give_address() -> None:
            dialog = window.iiif.dialog
            asked.append(dialog.windowTitle())
            qtbot.keyClicks(dialog.address, collection)
            qtbot.keyClick(dialog.address, Qt.Key.Key_Return)

        QTimer.singleShot(100, give_address)
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


def test_a_chosen_canvas_at_a_chosen_size_and_its_shapes_out_to_the_canvas_and_back(qtbot, window, tmp_path: Path,
                                                                                   shared_data: Path,
                                                                                   monkeypatch) -> None:
    from engine.annotations import (
        Geometry,
        annotations_of,
        create_annotation,
        delete_annotations,
    )
    from engine.categories import add_category

    server, _ = _serve(shared_data)
    try:
        Project.create(tmp_path / "project").close()
        with qtbot.waitSignal(window.project_opened, timeout=10_000):
            window.open_project(tmp_path / "project")

        def choose_second_at_150_pixels() -> None:
            dialog = window.iiif.dialog
            qtbot.keyClicks(dialog.address, f"{server.base}/m.json")
            qtbot.keyClicks(dialog.canvases, "0")  # not a canvas number: said in the dialog, which stays
            qtbot.keyClick(dialog.address, Qt.Key.Key_Return)
            assert "counted from 1" in dialog.problem.text() and dialog.isVisible()
            dialog.canvases.clear()
            qtbot.keyClicks(dialog.canvases, "2")
            dialog.size.setCurrentIndex(1)
            dialog.pixels.setValue(150)
            qtbot.keyClick(dialog.address, Qt.Key.Key_Return)

        QTimer.singleShot(100, choose_second_at_150_pixels)
        window.actions_by_name["import-iiif"].trigger()
        qtbot.waitUntil(lambda: len(window.gallery.model.rows()) == 1, timeout=30_000)
        (row,) = window.gallery.model.rows()
        assert (row.title, row.width, row.height) == ("Catechismus, f. 2", 150, 100)

        project = window.project
        category = add_category(project, "initial")
        create_annotation(project, image_id=row.id, category_id=category.id, creator="Ada",
                          geometry=Geometry(bbox=(15, 10, 30, 20)))  # the canvas is 300×200: twice the page

        def export_into() -> None:
            dialog = window.iiif.dialog
            dialog.folder.clear()
            qtbot.keyClicks(dialog.folder, str(tmp_path / "out"))
            qtbot.keyClicks(dialog.base_url, "ftp://nowhere")
            qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)
            assert "is not a web address" in dialog.problem.text()
            dialog.base_url.clear()
            qtbot.keyClicks(dialog.base_url, "https://example.org/cat/")
            qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)

        QTimer.singleShot(100, export_into)
        window.actions_by_name["export-w3c"].trigger()
        window.jobs.wait(20_000)
        (page_file,) = (tmp_path / "out" / "annotations").iterdir()
        (annotation,) = json.loads(page_file.read_text("utf-8"))["items"]
        assert annotation["target"]["source"]["id"] == f"{server.base}/c1"
        assert annotation["target"]["selector"][0]["value"] == "xywh=pixel:30,20,60,40"

        delete_annotations(project, [a.id for a in annotations_of(project, row.id)])
        monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args, **kwargs: ([str(page_file)], ""))
        window.actions_by_name["import-w3c"].trigger()
        qtbot.waitUntil(lambda: any("1 annotation(s) added" in note.label.text()
                                    for note in window.notifications.notifications()), timeout=20_000)
        (back,) = annotations_of(project, row.id)
        assert back.is_box and back.bbox == (15, 10, 30, 20)
    finally:
        server.http.shutdown()
