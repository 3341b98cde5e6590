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

from engine.imaging.decode import load_page
from engine.imaging.isolated import shared_decode_pool
from engine.jobs import CancelToken, ProgressCallback, report
from engine.models.runs import recorded_run
from engine.models.service import ModelService
from engine.project import Project
from engine.retrieval.index import index_path, open_index
from engine.retrieval.vectors import NewVector, page_content, pages_to_embed, store_vectors, vector_fingerprint
from engine.store.schema import Image

DEFAULT_BATCH = 16


@dataclass(frozen=True, slots=True)
class ClipInput:
    """What CLIP's preprocessing needs; picklable, for the decoder processes."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def clip_pixels(path: Path, page_index: int, image_format: str | None, width: int, height: int,
                spec: ClipInput) -> np.ndarray:
    """A page as CLIP sees it: ``[3, S, S]`` float32 (shorter side to S, centre crop, normalised).

    Decoded at the smallest resolution whose shorter side still covers S.
    """
    from PIL import Image as PILImage

    long_side = math.ceil(spec.size * max(width, height) / max(1, min(width, height)))
    image = load_page(path, page_index, max_side=max(long_side, spec.size), image_format=image_format)
    image = image.convert("RGB")
    scale = spec.size / min(image.size)
    resized = image.resize((max(spec.size, round(image.width * scale)), max(spec.size, round(image.height * scale))),
                           PILImage.Resampling.BICUBIC)
    left, top = (resized.width - spec.size) // 2, (resized.height - spec.size) // 2
    crop = np.asarray(resized.crop((left, top, left + spec.size, top + spec.size)), dtype=np.float32) / 255.0
    normalised = (crop - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


@dataclass
class IndexResult:
    embedded: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _encode(network: Any, batch: list[np.ndarray]) -> list[np.ndarray]:
    import torch

    return list(network.encode_images(torch.from_numpy(np.stack(batch))).cpu().numpy())


def index_project(project: Project, service: ModelService, model_id: str, *, batch_size: int = DEFAULT_BATCH,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> IndexResult:
    """Embed the pages that lack a current vector for ``model_id`` and bring the search index up to date."""
    network = service.run(model_id, lambda loaded: loaded)  # loads it; its settings shape the preprocessing
    spec = ClipInput(network.image_size, network.mean, network.std)
    todo = pages_to_embed(project, model_id)
    result = IndexResult()
    with project.unit_of_work() as session:
        total = session.scalar(select(func.count(Image.id))) or 0
    result.already = total - len(todo)
    if not todo:
        open_index(project, model_id)  # rebuilt if the database changed behind it
        report(progress, total, total, "Every page is in the search index")
        return result
    device = service.device_of(model_id)
    with recorded_run(project, model_id, device=device, parameters={"task": "index", "pages": len(todo),
                                                                    "batch_size": batch_size}) as run:
        pool = shared_decode_pool()
        waiting: deque[tuple[Image, Future[np.ndarray]]] = deque()
        upcoming = iter(todo)

        def top_up() -> None:
            while len(waiting) < 2 * batch_size:
                image = next(upcoming, None)
                if image is None:
                    return
                waiting.append((image, pool.submit(clip_pixels, Path(image.path), image.page_index, image.format,
                                                   image.width, image.height, spec)))

        top_up()
        while waiting:
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch: list[tuple[Image, np.ndarray]] = []
            while waiting and len(batch) < batch_size:
                image, future = waiting.popleft()
                try:
                    batch.append((image, future.result()))
                except Exception as error:  # noqa: BLE001 - one unreadable page must not stop the index
                    result.failed.append((image.path, str(error) or type(error).__name__))
                top_up()  # decode ahead while the model works
            if batch:
                vectors = service.run_batches(model_id, [pixels for _, pixels in batch], _encode,
                                              batch_size=batch_size)
                store_vectors(project, model_id, [
                    NewVector(image.id, None, page_content(image.sha256, image.page_index), vector)
                    for (image, _), vector in zip(batch, vectors, strict=True)])
                result.embedded += len(batch)
            done = result.already + result.embedded + len(result.failed)
            report(progress, done, total, f"Indexed {done} of {total} pages for search")
        run.timings["pages"] = result.embedded
    index = open_index(project, model_id)
    assert index.size == vector_fingerprint(project, model_id)[0]
    return result


def forget_index(project: Project, model_id: str) -> None:
    """Drop the saved FAISS file (it is rebuilt from the database on next use)."""
    index_path(project, model_id).unlink(missing_ok=True)
