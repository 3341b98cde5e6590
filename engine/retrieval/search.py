"""Searching a collection: by words, by an example page, by a region; zero-shot tagging as proposals."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import MarginaliaError
from engine.jobs import ProgressCallback, report
from engine.models.service import ModelService
from engine.project import Project
from engine.retrieval.index import open_index
from engine.retrieval.text_tower import OnnxTextTower, export_tower, open_tower, tower_folder
from engine.retrieval.vectors import owners, vector_ids, vector_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hit:
    image_id: int
    score: float  # cosine similarity, -1..1
    annotation_id: int | None = None  # set when a region matched


def _ranked(project: Project, model_id: str, query: np.ndarray, k: int, *, pages_only: bool,
            within: set[int] | None) -> list[Hit]:
    index = open_index(project, model_id)
    if index.size == 0:
        raise MarginaliaError("Nothing is indexed for search yet: run 'Index for search' (or 'marginalia index') "
                              "first.")
    # Filters (pages only, the gallery's pages) go to the index itself, so k results come back whenever
    # k qualify.
    allowed = vector_ids(project, model_id, image_ids=within, pages_only=pages_only)
    if allowed is not None and not allowed:
        return []
    scores, ids = index.search(query, k, allowed=allowed)
    found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    known = owners(project, [i for i, _ in found])
    return [Hit(known[i].image_id, score, known[i].annotation_id) for i, score in found if i in known]


def embed_texts(service: ModelService, model_id: str, texts: list[str]) -> np.ndarray:
    """``[N, D]`` unit vectors for the texts, on the model's thread."""
    return service.run(model_id, lambda network: network.encode_texts(texts).cpu().numpy())


_towers: dict[Path, OnnxTextTower | None] = {}


def _tower_place(service: ModelService, model_id: str) -> tuple[Path, str]:
    installed = service.store.require(model_id)
    return installed.folder, installed.weights_sha256()


def embed_query(service: ModelService, model_id: str, texts: list[str]) -> np.ndarray:
    """``[N, D]`` unit vectors for query texts: through the exported text tower when it exists (no torch,
    nothing else loaded), else through the model, exporting the tower for the next time."""
    folder, checksum = _tower_place(service, model_id)
    key = tower_folder(folder, checksum)
    if _towers.get(key) is None:  # not opened yet, or not exported when last asked
        _towers[key] = open_tower(folder, checksum)
    tower = _towers[key]
    if tower is not None:
        return tower.encode(texts)
    vectors = embed_texts(service, model_id, texts)
    prepare_text_tower(service, model_id)
    return vectors


def prepare_text_tower(service: ModelService, model_id: str, progress: ProgressCallback | None = None) -> None:
    """Export the model's text tower once (a few seconds), so later queries need no torch; never fails the
    caller (the torch path stays)."""
    folder, checksum = _tower_place(service, model_id)
    target = tower_folder(folder, checksum)
    if (target / "text.onnx").is_file():
        return
    report(progress, 0, 0, "Preparing fast search by words (once for this model)…")
    try:
        service.run(model_id, lambda network: export_tower(network, target))
    except Exception as error:  # noqa: BLE001 - an exporter fault or a tokenizer it does not handle
        log.info("The text tower of %s stays on torch: %s", model_id, error)


def search_text(project: Project, service: ModelService, model_id: str, text: str, *, k: int = 50,
                within: set[int] | None = None, pages_only: bool = True) -> list[Hit]:
    """Pages (and regions, unless ``pages_only``) ranked by similarity to ``text``."""
    if not text.strip():
        raise MarginaliaError("Type what to look for, e.g. 'a coat of arms' or 'Wappen'.")
    query = embed_query(service, model_id, [text.strip()])
    return _ranked(project, model_id, query, k, pages_only=pages_only, within=within)


def similar_to_page(project: Project, model_id: str, image_id: int, *, k: int = 50,
                    within: set[int] | None = None) -> list[Hit]:
    """Pages like this one (the page itself excluded). Needs no model: the page's vector is stored."""
    vector = vector_of(project, model_id, image_id=image_id)
    if vector is None:
        raise MarginaliaError("This page is not in the search index yet; index the project first.")
    hits = _ranked(project, model_id, vector[None], k + 1, pages_only=True, within=within)
    return [hit for hit in hits if hit.image_id != image_id][:k]


def similar_to_region(project: Project, service: ModelService, model_id: str, annotation_id: int, *, k: int = 50,
                      within: set[int] | None = None) -> list[Hit]:
    """Regions and pages like this annotation's region (e.g. other pages with this kind of ornament)."""
    from engine.retrieval.indexer import index_regions

    vector = vector_of(project, model_id, annotation_id=annotation_id)
    if vector is None:
        index_regions(project, service, model_id, [annotation_id])
        vector = vector_of(project, model_id, annotation_id=annotation_id)
    if vector is None:
        raise MarginaliaError("This region could not be read from its page.")
    hits = _ranked(project, model_id, vector[None], k + 1, pages_only=False, within=within)
    return [hit for hit in hits if hit.annotation_id != annotation_id][:k]


def similar_to_file(project: Project, service: ModelService, model_id: str, path: Path, *, k: int = 50,
                    within: set[int] | None = None) -> list[Hit]:
    """Pages like an image from outside the project (a photograph of an object, a page of another collection)."""
    from engine.imaging.probe import probe
    from engine.imaging.sniff import describe_content, read_head, sniff_format
    from engine.retrieval.indexer import clip_input, clip_pixels, encode_pixels

    try:
        head = read_head(path)
    except OSError as error:
        raise MarginaliaError(f"{path.name} cannot be opened ({error.strerror or error}).") from error
    image_format = sniff_format(head)
    if image_format is None:
        raise MarginaliaError(f"{path.name} is not an image Marginalia can read: {describe_content(head)}.")
    page = probe(path, image_format).pages[0]
    pixels = clip_pixels(path, page.page_index, image_format, page.width, page.height,
                         clip_input(service, model_id))
    query = service.run(model_id, lambda network: encode_pixels(network, [pixels]))
    return _ranked(project, model_id, np.stack(query), k, pages_only=True, within=within)
