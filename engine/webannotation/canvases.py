"""Which canvas a page is, and how its pixels map onto that canvas's coordinates.

A page imported from IIIF is the canvas it came from (``iiif_canvas``): its id, and its size, which is the
coordinate space annotations use and is often not the size of the image delivered (a canvas twice the
image's size doubles every coordinate). A local scan gets a canvas of its own in an exported manifest,
named by its content (``…/canvas/<sha256 prefix>-p<page index>``) so that annotations made on it elsewhere
come back to the same page whatever address the export was published under; its size is the page's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shapely import affinity
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.schema import IiifCanvas, Image

_GENERATED = re.compile(r"/canvas/([0-9a-f]{16})-p(\d+)/?$")


@dataclass(frozen=True, slots=True)
class PageCanvas:
    """A page and its canvas: ``width``/``height`` the canvas's, ``image_*`` the page's pixels."""

    image_id: int
    canvas_id: str
    width: int
    height: int
    image_width: int
    image_height: int
    from_iiif: bool
    manifest_id: str = ""
    service_id: str = ""
    service_version: int = 0

    def to_canvas(self, shape: BaseGeometry) -> BaseGeometry:
        return affinity.scale(shape, self.width / self.image_width, self.height / self.image_height,
                              origin=(0, 0))

    def to_page(self, shape: BaseGeometry) -> BaseGeometry:
        return affinity.scale(shape, self.image_width / self.width, self.image_height / self.height,
                              origin=(0, 0))


def generated_canvas_id(base: str, image: Image) -> str:
    return f"{base}canvas/{image.sha256[:16]}-p{image.page_index}"


def page_canvases(session: Session, images: list[Image], base: str) -> dict[int, PageCanvas]:
    """Every page's canvas: the IIIF one it came from, else one generated under ``base`` (ending in ``/``)."""
    rows = {row.image_id: row for row in session.scalars(
        select(IiifCanvas).where(IiifCanvas.image_id.in_([image.id for image in images])))} if images else {}
    canvases = {}
    for image in images:
        row = rows.get(image.id)
        if row is not None and row.canvas_width > 0 and row.canvas_height > 0:
            canvases[image.id] = PageCanvas(image.id, row.canvas_id, row.canvas_width, row.canvas_height,
                                            image.width, image.height, True, row.manifest_id, row.service_id,
                                            row.service_version)
        else:
            canvases[image.id] = PageCanvas(image.id, generated_canvas_id(base, image), image.width, image.height,
                                            image.width, image.height, False)
    return canvases


class CanvasFinder:
    """The page an annotation's target means: by IIIF canvas id, by the image service or image a viewer
    showed (Annotorious names the tile source or image, not the canvas), or by a generated canvas's name."""

    def __init__(self, session: Session) -> None:
        images = list(session.scalars(select(Image)))
        self._canvases = page_canvases(session, images, "")
        self._by_id: dict[str, list[int]] = {}
        for page in self._canvases.values():
            if page.from_iiif:
                self._add(page.canvas_id, page.image_id)
                if page.service_id:
                    self._add(page.service_id, page.image_id)
                    self._add(f"{page.service_id}/info.json", page.image_id)
        self._by_content = {(image.sha256[:16], image.page_index): image.id for image in images}

    def _add(self, key: str, image_id: int) -> None:
        self._by_id.setdefault(key.rstrip("/"), []).append(image_id)

    def page(self, image_id: int) -> PageCanvas | None:
        return self._canvases.get(image_id)

    def find(self, source: str) -> tuple[PageCanvas | None, str]:
        """The page ``source`` names, or ``None`` with the reason."""
        key = source.split("#", 1)[0].rstrip("/")
        matches = sorted(set(self._by_id.get(key, [])))
        if len(matches) == 1:
            return self._canvases[matches[0]], ""
        if len(matches) > 1:
            return None, f"{key} is the canvas of {len(matches)} pages here (pages {matches}); import with --page"
        generated = _GENERATED.search(key)
        if generated is not None:
            image_id = self._by_content.get((generated.group(1), int(generated.group(2))))
            if image_id is not None:
                return self._canvases[image_id], ""
            return None, f"{key} is a page Marginalia exported, but no page here has that content"
        return None, f"no page here is the canvas {key or '(none named)'}"
