"""IIIF Presentation manifests and collections, versions 2.1 and 3, read into what an import needs.

Libraries publish manifests written by many tools over many years, so the reader is tolerant where the
meaning is clear (a label as a string, a list or a language map; a service as an object or a list; an
image behind a ``Choice``) and refuses, with a reason a curator can act on, what it cannot be sure of: a page
that is not JSON (a viewer's HTML page instead of its manifest), another kind of document, a canvas without
its size, painted on only part of itself or by several images (coordinates could not be given back on it).
A canvas it cannot use is left out and said; the others are kept.

Nothing here touches the network: callers fetch the bytes (:mod:`engine.iiif` grows the download side).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import MarginaliaError

PRESENTATION_3 = "http://iiif.io/api/presentation/3/context.json"
PRESENTATION_2 = "http://iiif.io/api/presentation/2/context.json"
# Languages a label is shown in when a language map has several: no language, then English, then the first.
PREFERRED_LANGUAGES = ("none", "en")
_TAG = re.compile(r"<[^>]*>")
_LEVEL = re.compile(r"level([012])")


class ManifestError(MarginaliaError):
    """A document that cannot be read as a IIIF manifest or collection."""


@dataclass(frozen=True, slots=True)
class ImageService:
    """An Image API service: ``id`` its base URI (``id/info.json`` describes it), ``version`` 2 or 3,
    ``level`` its compliance level where the manifest says (0: pre-made tiles and sizes only)."""

    id: str
    version: int
    level: int | None = None


@dataclass(frozen=True, slots=True)
class CanvasImage:
    """The image painted on a canvas: its own URL (often a JPEG of some size), its service, its size where the
    manifest states it (the canvas's size is the coordinate space, not necessarily the image's)."""

    url: str | None
    service: ImageService | None
    width: int | None = None
    height: int | None = None
    format: str = ""


@dataclass(frozen=True, slots=True)
class Canvas:
    id: str
    label: str
    width: int
    height: int
    image: CanvasImage
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Manifest:
    id: str
    version: int
    label: str
    canvases: list[Canvas]
    metadata: tuple[tuple[str, str], ...] = ()
    required_statement: str = ""  # v3 requiredStatement, v2 attribution
    rights: str = ""  # v3 rights, v2 license
    nav_date: str = ""
    left_out: list[str] = field(default_factory=list)  # canvases not usable, each with its reason


@dataclass(frozen=True, slots=True)
class CollectionEntry:
    id: str
    label: str
    kind: str  # "Manifest" or "Collection"


@dataclass(frozen=True)
class Collection:
    id: str
    version: int
    label: str
    items: list[CollectionEntry]


def read_presentation(data: bytes, source: str) -> Manifest | Collection:
    """The manifest or collection in ``data`` (fetched from, or read at, ``source``, named in messages)."""
    document = _json(data, source)
    version = _version(document, source)
    kind = _kind(document, version)
    if kind == "Collection":
        return _collection(document, version)
    if kind != "Manifest":
        raise ManifestError(f"{source} is a IIIF {kind or 'document of no stated type'}, not a manifest or a "
                            "collection: give the address of the book's manifest.")
    return _manifest(document, version, source)


def _json(data: bytes, source: str) -> dict[str, Any]:
    text = data.lstrip()[:200].lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        raise ManifestError(f"{source} is a web page, not a IIIF manifest (a viewer's page, perhaps): give the "
                            "manifest's own address, often ending in manifest or manifest.json.")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{source} is not a IIIF manifest: it is not JSON ({error}).") from error
    if not isinstance(document, dict):
        raise ManifestError(f"{source} is not a IIIF manifest: its JSON is not an object.")
    return document


def _version(document: dict[str, Any], source: str) -> int:
    contexts = document.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    if PRESENTATION_3 in contexts:
        return 3
    if PRESENTATION_2 in contexts:
        return 2
    stated = ", ".join(str(context) for context in contexts if context) or "none"
    raise ManifestError(f"{source} is not a IIIF Presentation 2.1 or 3 document (its @context: {stated}).")


def _kind(document: dict[str, Any], version: int) -> str:
    if version == 3:
        return str(document.get("type", ""))
    return str(document.get("@type", "")).removeprefix("sc:")


def _id(node: dict[str, Any]) -> str:
    return str(node.get("id") or node.get("@id") or "")


def text_of(value: Any) -> str:
    """A label, value or statement as plain text: a string, a list, a v2 ``@value`` object or a v3 language
    map; HTML markup (allowed in IIIF values) removed, entities decoded."""
    if value is None:
        return ""
    if isinstance(value, str):
        return html.unescape(_TAG.sub("", value)).strip()
    if isinstance(value, list):
        return "; ".join(part for part in (text_of(item) for item in value) if part)
    if isinstance(value, dict):
        if "@value" in value:
            return text_of(value["@value"])
        for language in (*PREFERRED_LANGUAGES, *value.keys()):
            if language in value:
                return text_of(value[language])
    return str(value)


def _metadata(node: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    entries = node.get("metadata")
    if not isinstance(entries, list):
        return ()
    pairs = ((text_of(entry.get("label")), text_of(entry.get("value"))) for entry in entries
             if isinstance(entry, dict))
    return tuple((label, value) for label, value in pairs if label or value)


def _collection(document: dict[str, Any], version: int) -> Collection:
    if version == 3:
        members = [item for item in document.get("items") or [] if isinstance(item, dict)]
        entries = [CollectionEntry(_id(item), text_of(item.get("label")), str(item.get("type", "")))
                   for item in members]
    else:
        members = [*(document.get("collections") or []), *(document.get("manifests") or []),
                   *(document.get("members") or [])]
        entries = [CollectionEntry(_id(item), text_of(item.get("label")),
                                   str(item.get("@type", "")).removeprefix("sc:"))
                   for item in members if isinstance(item, dict)]
    entries = [entry for entry in entries if entry.id and entry.kind in ("Manifest", "Collection")]
    return Collection(_id(document), version, text_of(document.get("label")), entries)


def _manifest(document: dict[str, Any], version: int, source: str) -> Manifest:
    if version == 3:
        nodes = [item for item in document.get("items") or [] if isinstance(item, dict)]
        required = document.get("requiredStatement")
        statement = text_of(required.get("value")) if isinstance(required, dict) else ""
        rights = str(document.get("rights") or "")
    else:
        sequences = [seq for seq in document.get("sequences") or [] if isinstance(seq, dict)]
        nodes = [item for item in (sequences[0].get("canvases") or [] if sequences else []) if isinstance(item, dict)]
        statement = text_of(document.get("attribution"))
        rights = text_of(document.get("license"))
    canvases, left_out = [], []
    for position, node in enumerate(nodes, start=1):
        try:
            canvases.append(_canvas(node, version, position))
        except ManifestError as error:
            left_out.append(str(error))
    if not canvases:
        reason = f" ({left_out[0]})" if left_out else ""
        raise ManifestError(f"{source} lists no canvas that can become a page{reason}.")
    return Manifest(_id(document), version, text_of(document.get("label")), canvases, _metadata(document),
                    statement, rights, str(document.get("navDate") or ""), left_out)


def _canvas(node: dict[str, Any], version: int, position: int) -> Canvas:
    label = text_of(node.get("label")) or f"canvas {position}"
    try:
        width, height = int(node["width"]), int(node["height"])
    except (KeyError, TypeError, ValueError):
        raise ManifestError(f"canvas {position} ({label}) does not state its size, so shapes could not be given "
                            "back on it") from None
    if width <= 0 or height <= 0:
        raise ManifestError(f"canvas {position} ({label}) has a size of {width}×{height}")
    annotations = _painting_annotations(node, version)
    if len(annotations) > 1:
        raise ManifestError(f"canvas {position} ({label}) is painted by {len(annotations)} images (a composite "
                            "page); only a canvas painted by one image can become a page")
    image = _painted_image(annotations, version)
    if image is None:
        raise ManifestError(f"canvas {position} ({label}) paints no image")
    region = _painted_region(annotations[0], version)
    if region is not None and region != (0, 0, width, height):
        raise ManifestError(f"canvas {position} ({label}) paints its image on only part of itself "
                            f"(xywh={','.join(str(v) for v in region)} of {width}×{height}), so shapes could not be "
                            "given back at the right place on it")
    return Canvas(_id(node), label, width, height, image, _metadata(node))


def _painting_annotations(canvas: dict[str, Any], version: int) -> list[dict[str, Any]]:
    if version == 3:
        return [annotation for page in canvas.get("items") or [] if isinstance(page, dict)
                for annotation in page.get("items") or [] if isinstance(annotation, dict)
                and annotation.get("motivation", "painting") == "painting"]
    return [annotation for annotation in canvas.get("images") or [] if isinstance(annotation, dict)]


def _painted_image(annotations: list[dict[str, Any]], version: int) -> CanvasImage | None:
    bodies = [annotation.get("body" if version == 3 else "resource") for annotation in annotations]
    for body in bodies:
        body = _chosen(body)
        if isinstance(body, dict):
            return CanvasImage(_id(body) or None, _service(body.get("service")), _size(body.get("width")),
                               _size(body.get("height")), str(body.get("format") or ""))
    return None


def _painted_region(annotation: dict[str, Any], version: int) -> tuple[int, ...] | None:
    """The part of the canvas the image is painted on (``#xywh=`` of the target), ``None`` for all of it."""
    target = annotation.get("target" if version == 3 else "on")
    if isinstance(target, dict):
        selector = target.get("selector")
        selector = selector[0] if isinstance(selector, list) and selector else selector
        fragment = str(selector.get("value") or "") if isinstance(selector, dict) else ""
    else:
        fragment = str(target or "").partition("#")[2]
    match = re.search(r"xywh=(?:pixel:)?(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)",
                      fragment)
    return tuple(round(float(value)) for value in match.groups()) if match else None


def _chosen(body: Any) -> Any:
    """The default of a ``Choice`` (v3 ``items``, v2 ``default``), else the body itself."""
    if isinstance(body, list):
        body = body[0] if body else None
    if isinstance(body, dict) and str(body.get("type") or body.get("@type") or "").endswith("Choice"):
        return _chosen(body.get("default") or body.get("items") or None)
    return body


def _service(value: Any) -> ImageService | None:
    services = value if isinstance(value, list) else [value]
    for service in services:
        if not isinstance(service, dict) or not _id(service):
            continue
        kind = str(service.get("type") or service.get("@type") or "")
        context = str(service.get("@context") or "")
        profile = str(service.get("profile") or "")
        if "ImageService3" in kind or "image/3" in context:
            version = 3
        elif "ImageService2" in kind or "image/2" in context or "image/2" in profile:
            version = 2
        else:
            continue  # a search or authentication service, not an image's
        return ImageService(_id(service).rstrip("/"), version, compliance_level(service.get("profile")))
    return None


def compliance_level(profile: Any) -> int | None:
    """An Image API profile's level: ``"level1"``, ``".../image/2/level2.json"``, or the first of a v2 list."""
    first = profile[0] if isinstance(profile, list) and profile else profile
    found = _LEVEL.search(str(first or ""))
    return int(found.group(1)) if found else None


def _size(value: Any) -> int | None:
    try:
        size = int(value)
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None
