"""A IIIF manifest served by a local image server (127.0.0.1, this module's) becomes pages: twenty canvases
with their labels and metadata, at full resolution (whole or stitched from tiles), each remembering its canvas
(twice the size of its image here); a stopped import leaves no half page and a second run fetches only what
is missing; a collection is listed for choosing; a smaller size is asked of the server when wanted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from engine.iiif.importer import CollectionGiven, import_manifest
from engine.inventory import list_images
from engine.jobs import CancelToken
from engine.project import Project
from engine.store.schema import IiifCanvas
from tests.iiif_server import ImageServer

CANVASES = 20


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[ImageServer]:
    source = Image.open(shared_data / "manuscripts" / "dannhauer_catechismus04_1653_0585.jpg").convert("RGB")
    started = ImageServer(source.crop((50, 50, 450, 330)))  # 400×280
    for number in range(CANVASES):  # even canvases: a capped server, tiles; odd: the whole image at once
        info = ({"profile": "level0", "tiles": [{"width": 160, "scaleFactors": [1, 2]}]} if number % 2 == 0
                else {"profile": "level2"})
        page = source.crop((50 + 10 * number, 50 + 20 * number, 450 + 10 * number, 330 + 20 * number))
        started.service(f"p{number}", 3, source=page, **info)
    started.documents["/book/manifest.json"] = json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{started.base}/book/manifest.json",
        "type": "Manifest", "label": {"de": ["Catechismus"]}, "navDate": "1653-01-01T00:00:00Z",
        "metadata": [{"label": {"en": ["Shelfmark"]}, "value": {"none": ["Dannh. 4"]}}],
        "requiredStatement": {"label": {"en": ["Attribution"]}, "value": {"en": ["Test library"]}},
        "items": [{"id": f"{started.base}/book/canvas/{number}", "type": "Canvas",
                   "label": {"none": [f"p. {number + 1}"]}, "width": 800, "height": 560,
                   "items": [{"id": f"{started.base}/book/canvas/{number}/p", "type": "AnnotationPage",
                              "items": [{"id": f"{started.base}/book/canvas/{number}/a", "type": "Annotation",
                                         "motivation": "painting", "target": f"{started.base}/book/canvas/{number}",
                                         "body": {"id": f"{started.base}/p{number}/full/max/0/default.jpg",
                                                  "type": "Image", "format": "image/jpeg",
                                                  "service": [{"id": f"{started.base}/p{number}",
                                                               "type": "ImageService3"}]}}]}]}
                  for number in range(CANVASES)]}).encode()
    started.documents["/collection.json"] = json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{started.base}/collection.json",
        "type": "Collection", "label": {"en": ["Prints"]},
        "items": [{"id": f"{started.base}/book/manifest.json", "type": "Manifest",
                   "label": {"en": ["Catechismus"]}}]}).encode()
    yield started
    started.http.shutdown()


def _image_requests(server: ImageServer) -> int:
    return sum(count for path, count in server.requests.items() if "/book/" not in path and path.startswith("/p"))


def test_a_twenty_canvas_manifest_becomes_pages_with_their_metadata_and_canvases(server: ImageServer,
                                                                                  project: Project) -> None:
    before = _image_requests(server)
    report = import_manifest(project, f"{server.base}/book/manifest.json")
    assert (report.pages_added, report.failed, report.cancelled) == (CANVASES, [], False), report.summary()
    assert report.requests == _image_requests(server) - before
    rows = list_images(project)
    assert len(rows) == CANVASES and all((row.width, row.height) == (400, 280) for row in rows)
    first = min(rows, key=lambda row: row.id)
    assert np.array_equal(np.asarray(Image.open(first.path).convert("RGB")), np.asarray(server.sources["p0"]))
    with project.unit_of_work() as session:
        canvases = {canvas.image_id: canvas for canvas in session.scalars(select(IiifCanvas))}
        from engine.store.schema import Image as ImageRow

        page = session.get_one(ImageRow, first.id)
        assert (page.title, page.shelfmark, page.date) == ("Catechismus, p. 1", "Dannh. 4", "1653-01-01T00:00:00Z")
        assert page.rights == "Test library" and f"IIIF manifest: {server.base}/book/manifest.json" in page.notes
    canvas = canvases[first.id]
    assert (canvas.canvas_id, canvas.canvas_width, canvas.canvas_height) == (f"{server.base}/book/canvas/0", 800, 560)
    assert (canvas.service_id, canvas.service_version) == (f"{server.base}/p0", 3)

    again = import_manifest(project, f"{server.base}/book/manifest.json")
    assert (again.pages_added, again.pages_already, again.requests) == (0, CANVASES, 0), again.summary()
    assert len(list_images(project)) == CANVASES


def test_a_stopped_import_leaves_no_half_page_and_the_next_fetches_only_the_rest(server: ImageServer,
                                                                                  project: Project) -> None:
    token = CancelToken()
    pages_seen: list[int] = []

    def progress(step) -> None:  # noqa: ANN001 - a JobProgress
        pages_seen.append(step.done)
        if step.done == 3:
            token.cancel()

    stopped = import_manifest(project, f"{server.base}/book/manifest.json", progress=progress, cancel=token)
    assert stopped.cancelled and stopped.pages_added == 3, stopped.summary()
    folder = project.folder / "iiif"
    assert not list(folder.rglob("*.part"))
    assert len(list_images(project)) == 3
    rest = import_manifest(project, f"{server.base}/book/manifest.json")
    assert (rest.pages_added, rest.pages_already) == (CANVASES - 3, 3)
    assert len(list_images(project)) == CANVASES


def test_a_collection_is_listed_for_choosing_and_a_smaller_size_is_asked_of_the_server(server: ImageServer,
                                                                                       project: Project) -> None:
    with pytest.raises(CollectionGiven, match=r"Prints is a IIIF collection of 1 item\(s\); import one of its "
                                               r"manifests: Catechismus"):
        import_manifest(project, f"{server.base}/collection.json")
    assert list_images(project) == []
    server.documents["/twice.json"] = server.documents["/book/manifest.json"].replace(b"/p3", b"/p1")
    twice = import_manifest(project, f"{server.base}/twice.json", canvases=range(1, 4, 2))  # p. 2 and p. 4
    assert twice.pages_added == 1 and [label for label, _ in twice.failed] == ["p. 4"], twice.summary()
    assert "its image is the same as another page's" in twice.failed[0][1]
    report = import_manifest(project, f"{server.base}/book/manifest.json", size=100, canvases=range(4, 6),
                             folder=project.folder / "small")
    assert report.pages_added == 2
    assert sorted((row.width, row.height) for row in list_images(project))[:2] == [(100, 70), (100, 70)]
    assert any("!100,100" in path for path in server.requests)


def test_the_command_line_imports_chosen_canvases_and_refuses_a_web_page_on_one_line(
        server: ImageServer, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.app import main

    folder = str(project.folder)
    project.close()
    status = main(["import-iiif", folder, f"{server.base}/book/manifest.json", "--canvases", "7-8", "--json"])
    said = json.loads(capsys.readouterr().out)
    assert status == 0 and (said["added"], said["failed"], said["manifest"]) == (2, [], "Catechismus")
    for address, reason in ((f"{server.base}/web-page", "is a web page, not a IIIF manifest"),
                            (f"{server.base}/nothing", "answered 404"),
                            (f"{server.base}/book/manifest.json", "Canvases are counted from 1")):
        extra = ["--canvases", "0-3"] if "book" in address else []
        assert main(["import-iiif", folder, address, *extra]) == 1
        error = capsys.readouterr().err
        assert reason in error and "Traceback" not in error and len(error.strip().splitlines()) == 1, error
    with Project.open(project.folder) as again:
        assert len(list_images(again)) == 2


def test_a_page_the_server_gives_whole_as_jpeg_is_kept_byte_for_byte(server: ImageServer, project: Project) -> None:
    from engine.iiif.fetch import fetch
    from engine.imaging.thumbnails import rendition_path, thumbnail_path

    manifest = json.loads(server.documents["/book/manifest.json"])
    manifest["items"] = manifest["items"][1:2]  # p. 2: a level-2 service, the whole image in one request
    manifest["items"][0]["label"] = {"none": ["fol. 1.r"]}
    server.documents["/jpeg.json"] = json.dumps(manifest).encode()
    server.encoding = "JPEG"
    try:
        report = import_manifest(project, f"{server.base}/jpeg.json")
        delivered = fetch(f"{server.base}/p1/full/max/0/default.jpg").data
    finally:
        server.encoding = "PNG"
    assert report.pages_added == 1, report.summary()
    [row] = list_images(project)
    stored = Path(row.path)
    assert stored.name == "0001_fol._1.r.jpg" and stored.read_bytes() == delivered  # not re-encoded
    assert (row.width, row.height) == (400, 280)
    with project.unit_of_work() as session:
        from engine.store.schema import Image as ImageRow

        sha256 = session.get_one(ImageRow, row.id).sha256
    for cached in (thumbnail_path(project.thumbnail_dir, sha256, 0), rendition_path(project.thumbnail_dir, sha256, 0)):
        with Image.open(cached) as opened:  # made from the pixels in hand: the import did not decode the page again
            assert opened.format == "JPEG" and max(opened.size) <= 400
