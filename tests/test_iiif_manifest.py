"""IIIF Presentation 2.1 and 3 manifests and collections read as the published documents mean them: labels in
any of their spellings, metadata without markup, the image behind each canvas and its Image API service, a
canvas that cannot become a page left out with its reason, and documents that are not manifests refused."""

from __future__ import annotations

import json

import pytest

from engine.iiif.manifest import Collection, Manifest, ManifestError, read_presentation

BASE = "http://127.0.0.1:8182"


def _v3_canvas(number: int, *, width: int = 2000, height: int = 3000, body: object | None = None) -> dict:
    image = body if body is not None else {
        "id": f"{BASE}/iiif/3/page{number}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
        "width": 1000, "height": 1500,
        "service": [{"id": f"{BASE}/iiif/3/page{number}", "type": "ImageService3", "profile": "level1"}]}
    return {"id": f"{BASE}/canvas/{number}", "type": "Canvas", "label": {"none": [f"f. {number}r"]},
            "width": width, "height": height,
            "items": [{"id": f"{BASE}/canvas/{number}/page", "type": "AnnotationPage",
                       "items": [{"id": f"{BASE}/canvas/{number}/paint", "type": "Annotation",
                                  "motivation": "painting", "body": image, "target": f"{BASE}/canvas/{number}"}]}]}


def _v3_manifest(canvases: list[dict]) -> bytes:
    return json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{BASE}/manifest.json",
        "type": "Manifest", "label": {"de": ["Berlinische Monatsschrift"], "en": ["Berlin Monthly"]},
        "metadata": [{"label": {"en": ["Date"]}, "value": {"none": ["1784"]}},
                     {"label": {"en": ["Author"]}, "value": {"en": ["<b>Kant</b>, Immanuel &amp; others"]}}],
        "requiredStatement": {"label": {"en": ["Attribution"]}, "value": {"en": ["Staatsbibliothek zu Berlin"]}},
        "rights": "http://creativecommons.org/publicdomain/mark/1.0/", "navDate": "1784-12-01T00:00:00Z",
        "items": canvases}).encode()


def test_a_presentation_3_manifest_gives_its_canvases_labels_metadata_and_image_services() -> None:
    choice = {"type": "Choice", "items": [
        {"id": f"{BASE}/colour.jpg", "type": "Image", "format": "image/jpeg",
         "service": {"@id": f"{BASE}/iiif/2/colour/", "@type": "ImageService2",
                     "profile": "http://iiif.io/api/image/2/level0.json"}},
        {"id": f"{BASE}/infrared.jpg", "type": "Image"}]}
    manifest = read_presentation(_v3_manifest([_v3_canvas(1), _v3_canvas(2, body=choice)]), "manifest.json")
    assert isinstance(manifest, Manifest) and manifest.version == 3
    assert manifest.label == "Berlin Monthly"  # no "none", so English before German
    assert manifest.metadata == (("Date", "1784"), ("Author", "Kant, Immanuel & others"))
    assert (manifest.required_statement, manifest.nav_date) == ("Staatsbibliothek zu Berlin", "1784-12-01T00:00:00Z")
    assert manifest.rights.endswith("publicdomain/mark/1.0/")
    first, second = manifest.canvases
    assert (first.id, first.label, first.width, first.height) == (f"{BASE}/canvas/1", "f. 1r", 2000, 3000)
    assert (first.image.width, first.image.height) == (1000, 1500)  # the canvas is twice the image
    assert (first.image.service.id, first.image.service.version, first.image.service.level) == (
        f"{BASE}/iiif/3/page1", 3, 1)
    assert second.image.url == f"{BASE}/colour.jpg"  # a Choice's first (default) image
    assert (second.image.service.id, second.image.service.version, second.image.service.level) == (
        f"{BASE}/iiif/2/colour", 2, 0)


def test_a_presentation_2_manifest_reads_alike() -> None:
    document = {
        "@context": "http://iiif.io/api/presentation/2/context.json", "@id": f"{BASE}/v2/manifest.json",
        "@type": "sc:Manifest", "label": [{"@value": "Catechismus", "@language": "la"}],
        "metadata": [{"label": "Shelfmark", "value": "Dannh. 4"}], "attribution": "<p>SLUB Dresden</p>",
        "license": "https://creativecommons.org/licenses/by-sa/4.0/",
        "sequences": [{"@type": "sc:Sequence", "canvases": [
            {"@id": f"{BASE}/v2/canvas/1", "@type": "sc:Canvas", "label": "585", "width": 1200, "height": 1800,
             "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": f"{BASE}/v2/canvas/1",
                         "resource": {"@id": f"{BASE}/iiif/2/585/full/full/0/default.jpg", "@type": "dctypes:Image",
                                      "format": "image/jpeg", "width": 1200, "height": 1800,
                                      "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                  "@id": f"{BASE}/iiif/2/585",
                                                  "profile": "http://iiif.io/api/image/2/level2.json"}}}]},
            {"@id": f"{BASE}/v2/canvas/2", "@type": "sc:Canvas", "label": "586",
             "images": []}]}]}
    manifest = read_presentation(json.dumps(document).encode(), "v2.json")
    assert isinstance(manifest, Manifest) and (manifest.version, manifest.label) == (2, "Catechismus")
    assert (manifest.required_statement, manifest.metadata) == ("SLUB Dresden", (("Shelfmark", "Dannh. 4"),))
    (canvas,) = manifest.canvases
    assert (canvas.label, canvas.image.service.version, canvas.image.service.level) == ("585", 2, 2)
    assert manifest.left_out == ["canvas 2 (586) does not state its size, so shapes could not be given back on it"]


@pytest.mark.parametrize("version", [2, 3])
def test_a_collection_lists_its_manifests_and_collections(version: int) -> None:
    if version == 3:
        document = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{BASE}/c.json",
                    "type": "Collection", "label": {"en": ["Prints"]},
                    "items": [{"id": f"{BASE}/a.json", "type": "Manifest", "label": {"en": ["A"]}},
                              {"id": f"{BASE}/sub.json", "type": "Collection", "label": {"en": ["More"]}}]}
    else:
        document = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": f"{BASE}/c.json",
                    "@type": "sc:Collection", "label": "Prints",
                    "manifests": [{"@id": f"{BASE}/a.json", "@type": "sc:Manifest", "label": "A"}],
                    "collections": [{"@id": f"{BASE}/sub.json", "@type": "sc:Collection", "label": "More"}]}
    collection = read_presentation(json.dumps(document).encode(), "c.json")
    assert isinstance(collection, Collection) and collection.label == "Prints"
    assert sorted((entry.kind, entry.label, entry.id) for entry in collection.items) == [
        ("Collection", "More", f"{BASE}/sub.json"), ("Manifest", "A", f"{BASE}/a.json")]


@pytest.mark.parametrize(("data", "said"), [
    (b"<!DOCTYPE html><html><body>Mirador</body></html>", "is a web page, not a IIIF manifest"),
    (b'{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Manifest", "items": [',
     "it is not JSON"),
    (b'{"@context": "http://iiif.io/api/image/3/context.json", "id": "x", "type": "ImageService3"}',
     "not a IIIF Presentation 2.1 or 3 document"),
    (b'{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Canvas", "id": "x"}',
     "is a IIIF Canvas, not a manifest"),
    (b'{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Manifest", "id": "x", "items": []}',
     "lists no canvas that can become a page"),
])
def test_what_is_not_a_usable_manifest_is_refused_with_a_reason(data: bytes, said: str) -> None:
    with pytest.raises(ManifestError, match=said):
        read_presentation(data, "http://example.org/book")


def test_a_canvas_with_no_image_or_no_size_is_left_out_and_the_others_kept() -> None:
    painted_nothing = _v3_canvas(2)
    painted_nothing["items"][0]["items"] = []
    no_size = _v3_canvas(3)
    del no_size["width"]
    manifest = read_presentation(_v3_manifest([_v3_canvas(1), painted_nothing, no_size]), "m.json")
    assert [canvas.label for canvas in manifest.canvases] == ["f. 1r"]
    assert manifest.left_out == ["canvas 2 (f. 2r) paints no image",
                                 "canvas 3 (f. 3r) does not state its size, so shapes could not be given back on it"]


def test_a_canvas_painted_on_only_part_of_itself_or_by_several_images_is_left_out() -> None:
    part = _v3_canvas(2)
    part["items"][0]["items"][0]["target"] = f"{BASE}/canvas/2#xywh=100,200,1000,1500"
    whole_said = _v3_canvas(3)  # a fragment naming the whole canvas is the whole canvas
    whole_said["items"][0]["items"][0]["target"] = {
        "type": "SpecificResource", "source": f"{BASE}/canvas/3",
        "selector": {"type": "FragmentSelector", "value": "xywh=0,0,2000,3000"}}
    composite = _v3_canvas(4)
    composite["items"][0]["items"].append(dict(composite["items"][0]["items"][0], id=f"{BASE}/canvas/4/overlay"))
    v3 = read_presentation(_v3_manifest([_v3_canvas(1), part, whole_said, composite]), "m.json")
    assert [canvas.label for canvas in v3.canvases] == ["f. 1r", "f. 3r"]
    assert v3.left_out == [
        "canvas 2 (f. 2r) paints its image on only part of itself (xywh=100,200,1000,1500 of 2000×3000), so shapes "
        "could not be given back at the right place on it",
        "canvas 4 (f. 4r) is painted by 2 images (a composite page); only a canvas painted by one image can become "
        "a page"]
    v2 = {
        "@context": "http://iiif.io/api/presentation/2/context.json", "@id": f"{BASE}/m2.json", "@type": "sc:Manifest",
        "label": "Two", "sequences": [{"canvases": [
            {"@id": f"{BASE}/c{n}", "@type": "sc:Canvas", "label": f"p{n}", "width": 100, "height": 100,
             "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": f"{BASE}/c{n}{fragment}",
                         "resource": {"@id": f"{BASE}/i{n}.jpg", "@type": "dctypes:Image"}}]}
            for n, fragment in ((1, ""), (2, "#xywh=0,0,50,100"))]}]}
    manifest = read_presentation(json.dumps(v2).encode(), "m2.json")
    assert [canvas.label for canvas in manifest.canvases] == ["p1"]
    assert "xywh=0,0,50,100 of 100×100" in manifest.left_out[0]
