"""Embedding every page of a project with a CLIP model: incremental, resumable, the model never waiting.

Pages are decoded and resized in the decoder worker processes (reduced
decoding: never more pixels than CLIP's input needs) while the model encodes
the previous batch; at most two batches are decoded ahead, so memory stays
flat however large the collection. Each batch is committed to the database
before the next, so a cancelled or crashed run resumes where it stopped.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from engine.fileio import write_atomically
from engine.imaging.decode import load_page
from engine.imaging.thumbnails import encode_rendition, rendition_decode_side, rendition_path
from engine.imaging.isolated import shared_decode_pool
from engine.imaging.model_input import centre_square, normalised
from engine.jobs import CancelToken, ProgressCallback, report
from engine.models.runs import recorded_run
from engine.models.service import ModelService
from engine.project import Project
from engine.retrieval.index import open_index
from engine.retrieval.vectors import NewVector, page_content, pages_to_embed, store_vectors
from engine.store.schema import Image

DEFAULT_BATCH = 16


@dataclass(frozen=True, slots=True)
class ClipInput:
    """What CLIP's preprocessing needs; picklable, for the decoder processes."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def clip_pixels(path: Path, page_index: int, image_format: str | None, width: int, height: int,
                spec: ClipInput, rendition: Path | None = None) -> np.ndarray:
    """A page as CLIP sees it: ``[3, S, S]`` float32 (shorter side to S, centre crop, normalised).

    From the page's search rendition (cached at import) when it is large enough,
    else decoded at the smallest resolution whose shorter side still covers S
    (and the rendition written for next time).
    """
    image = _rendition(rendition, min(spec.size, width, height))
    if image is None:
        page = load_page(path, page_index, max_side=rendition_decode_side(width, height), image_format=image_format)
        if rendition is not None:
            try:
                write_atomically(rendition, encode_rendition(page), durable=False)
            except OSError:
                pass  # a read-only cache still indexes, just more slowly next time
        image = page
    return normalised(centre_square(image, spec.size), spec.mean, spec.std)


def _rendition(path: Path | None, needed: int) -> Any:
    """The cached rendition if it has at least ``needed`` pixels on its shorter side."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if path is None or not path.is_file():
        return None
    try:
        with PILImage.open(path) as image:
            if min(image.size) < needed:
                return None  # too small for this model's input: decode the page
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError):
        return None


@dataclass
class IndexResult:
    embedded: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def encode_pixels(network: Any, batch: list[np.ndarray]) -> list[np.ndarray]:
    """CLIP image vectors ``[D]`` for pixels ``[3, S, S]`` as ``clip_pixels`` prepares them."""
    import torch

    return list(network.encode_images(torch.from_numpy(np.stack(batch))).cpu().numpy())


@dataclass(frozen=True, slots=True)
class _Item:
    """One thing to embed: where its pixels come from and what the vector will say it is."""

    image_id: int
    annotation_id: int | None
    content: str
    label: str  # for error reports
    pixels: Any  # a picklable function run in a decoder process
    arguments: tuple[Any, ...]


def _embed_items(project: Project, service: ModelService, model_id: str, items: list[_Item], *, batch_size: int,
                 total: int, already: int, progress: ProgressCallback | None, cancel: CancelToken | None,
                 result: IndexResult, what: str) -> None:
    pool = shared_decode_pool()
    waiting: deque[tuple[_Item, Future[np.ndarray]]] = deque()
    upcoming = iter(items)

    def top_up() -> None:  # at most two batches decoded ahead: memory stays flat
        while len(waiting) < 2 * batch_size:
            item = next(upcoming, None)
            if item is None:
                return
            waiting.append((item, pool.submit(item.pixels, *item.arguments)))

    top_up()
    while waiting:
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch: list[tuple[_Item, np.ndarray]] = []
        while waiting and len(batch) < batch_size:
            item, future = waiting.popleft()
            try:
                batch.append((item, future.result()))
            except Exception as error:  # noqa: BLE001 - one unreadable page must not stop the index
                result.failed.append((item.label, str(error) or type(error).__name__))
            top_up()  # decode ahead while the model works
        if batch:
            vectors = service.run_batches(model_id, [pixels for _, pixels in batch], encode_pixels, batch_size=batch_size)
            store_vectors(project, model_id, [NewVector(item.image_id, item.annotation_id, item.content, vector)
                                              for (item, _), vector in zip(batch, vectors, strict=True)])
            result.embedded += len(batch)
        done = already + result.embedded + len(result.failed)
        report(progress, done, total, f"Indexed {done} of {total} {what} for search")


def clip_input(service: ModelService, model_id: str) -> ClipInput:
    network = service.run(model_id, lambda loaded: loaded)  # loads it; its settings shape the preprocessing
    return ClipInput(network.image_size, network.mean, network.std)


def index_project(project: Project, service: ModelService, model_id: str, *, batch_size: int = DEFAULT_BATCH,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> IndexResult:
    """Embed the pages that lack a current vector for ``model_id`` and bring the search index up to date."""
    spec = clip_input(service, model_id)
    todo = pages_to_embed(project, model_id)
    result = IndexResult()
    with project.unit_of_work() as session:
        total = session.scalar(select(func.count(Image.id))) or 0
    result.already = total - len(todo)
    if todo:
        items = [_Item(image.id, None, page_content(image.sha256, image.page_index), image.path, clip_pixels,
                       (Path(image.path), image.page_index, image.format, image.width, image.height, spec,
                        rendition_path(project.thumbnail_dir, image.sha256, image.page_index)))
                 for image in todo]
        with recorded_run(project, model_id, device=service.device_of(model_id),
                          parameters={"task": "index", "pages": len(todo), "batch_size": batch_size}) as run:
            _embed_items(project, service, model_id, items, batch_size=batch_size, total=total,
                         already=result.already, progress=progress, cancel=cancel, result=result, what="pages")
            run.timings["pages"] = result.embedded
    else:
        report(progress, total, total, "Every page is in the search index")
    open_index(project, model_id)  # saved for the next search; rebuilt if the database changed behind it
    from engine.retrieval.search import prepare_text_tower

    prepare_text_tower(service, model_id, progress)  # the first query, even from a fresh process, needs no torch
    return result


def region_pixels(path: Path, page_index: int, image_format: str | None, width: int, height: int,
                  box: tuple[float, float, float, float], spec: ClipInput) -> np.ndarray:
    """An annotation's box (with a little context) as CLIP sees it, ``[3, S, S]``, decoded no larger than needed."""
    from PIL import Image as PILImage

    x, y, w, h = box
    margin = 0.1 * max(w, h)
    left, top = max(0.0, x - margin), max(0.0, y - margin)
    right, bottom = min(float(width), x + w + margin), min(float(height), y + h + margin)
    shorter = max(1.0, min(right - left, bottom - top))
    scale = min(1.0, spec.size / shorter)
    page = load_page(path, page_index, max_side=max(spec.size, math.ceil(max(width, height) * scale)),
                     image_format=image_format).convert("RGB")
    factor = page.width / width
    crop = page.crop((round(left * factor), round(top * factor), round(right * factor), round(bottom * factor)))
    side = spec.size
    square = PILImage.new("RGB", (max(crop.size), max(crop.size)), (255, 255, 255))  # keep the whole region
    square.paste(crop, ((square.width - crop.width) // 2, (square.height - crop.height) // 2))
    return normalised(square.resize((side, side), PILImage.Resampling.BICUBIC), spec.mean, spec.std)


def region_content(image_sha256: str, box: tuple[float, float, float, float]) -> str:
    return f"{image_sha256[:40]}:" + ",".join(f"{v:.0f}" for v in box)


def index_regions(project: Project, service: ModelService, model_id: str, annotation_ids: list[int] | None = None,
                  *, batch_size: int = DEFAULT_BATCH, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> IndexResult:
    """Embed annotations' regions (all accepted ones, or those given) that lack a current vector."""
    from engine.store.schema import Annotation, Vector
    from engine.store.types import AnnotationStatus

    spec = clip_input(service, model_id)
    with project.unit_of_work() as session:
        query = select(Annotation, Image).join(Image, Annotation.image_id == Image.id)
        query = query.where(Annotation.id.in_(annotation_ids)) if annotation_ids is not None else \
            query.where(Annotation.status == AnnotationStatus.ACCEPTED)
        pairs = session.execute(query.order_by(Annotation.id)).all()
        have = {(annotation_id, content) for annotation_id, content in session.execute(
            select(Vector.annotation_id, Vector.content).where(Vector.model_id == model_id,
                                                               Vector.annotation_id.is_not(None)))}
        session.expunge_all()
    items = []
    for annotation, image in pairs:
        box = (annotation.bbox_x, annotation.bbox_y, annotation.bbox_w, annotation.bbox_h)
        content = region_content(image.sha256, box)
        if (annotation.id, content) in have:
            continue
        items.append(_Item(image.id, annotation.id, content, f"{image.path} (annotation {annotation.id})",
                           region_pixels, (Path(image.path), image.page_index, image.format, image.width,
                                           image.height, box, spec)))
    result = IndexResult(already=len(pairs) - len(items))
    if items:
        _embed_items(project, service, model_id, items, batch_size=batch_size, total=len(pairs),
                     already=result.already, progress=progress, cancel=cancel, result=result, what="regions")
    open_index(project, model_id)
    return result


@dataclass(frozen=True, slots=True)
class CollectionIndexed:
    pages: IndexResult
    regions: IndexResult

    def summary(self) -> str:
        failed = len(self.pages.failed) + len(self.regions.failed)
        regions = (f"; {self.regions.embedded} region(s) now, {self.regions.already} already"
                   if self.regions.embedded or self.regions.already else "")
        return (f"{self.pages.embedded} page(s) now, {self.pages.already} already{regions}"
                + (f"; {failed} could not be read" if failed else ""))


def index_collection(project: Project, service: ModelService, model_id: str, *, batch_size: int = DEFAULT_BATCH,
                     progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> CollectionIndexed:
    """Pages, then the accepted annotations' regions (so "regions like this one" finds the curators' work)."""
    pages = index_project(project, service, model_id, batch_size=batch_size, progress=progress, cancel=cancel)
    regions = index_regions(project, service, model_id, batch_size=batch_size, progress=progress, cancel=cancel)
    return CollectionIndexed(pages, regions)
