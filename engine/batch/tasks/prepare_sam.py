"""``prepare-sam``: SAM page embeddings encoded on the workers, kept in this project's embedding cache."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.batch.task import BatchReport, PageTicket
from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService, checkpoint_of
from engine.project import Project
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.families import family_of
from engine.segmentation.precompute import precompute_embeddings
from engine.segmentation.segmenter import PageRef, Segmenter, frame_pixels


@dataclass(frozen=True, slots=True)
class Encoded:
    features: Any  # [C, 64, 64] as the cache stores it
    extras: Any  # SAM 2's high-resolution features, or None
    precision: str  # the worker's encoder precision: part of the cache key, as here


@dataclass
class EncodeWork:
    model_id: str
    checkpoint: str

    def prepare(self, ticket: PageTicket) -> np.ndarray:
        """The page in SAM's input frame, ``[h, w, 3]`` uint8 (a few MB however large the scan)."""
        return frame_pixels(PageRef.of(ticket.row), stretch=family_of(self.model_id).stretch)

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[np.ndarray],
                cancel: CancelToken) -> list[Encoded]:
        encoded = service.run_batches(self.model_id, inputs, functools.partial(family_of(self.model_id).encode,
                                                                               cancel=cancel), batch_size=len(inputs))
        precision = service.precision_of(self.model_id)
        return [Encoded(features, extras, precision) for features, extras in encoded]


@dataclass
class PrepareSamTask:
    name: ClassVar[str] = "prepare-sam"
    verb: ClassVar[str] = "Preparing SAM"
    model_id: str
    checkpoint: str = ""
    segmenter: Segmenter | None = None

    def _segmenter(self, project: Project, service: ModelService) -> Segmenter:
        if self.segmenter is None:
            self.segmenter = Segmenter(service, EmbeddingCache.of_project(project.folder), self.model_id)
        return self.segmenter

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        from engine.inventory import readable_pages

        pages = [PageRef.of(row) for row in readable_pages(project, image_ids)]
        result = precompute_embeddings(project, self._segmenter(project, service), pages, progress=progress,
                                       cancel=cancel)
        return BatchReport(self.name, pages=len(pages), done=result.encoded, skipped=result.already_cached,
                           failed=[(page.image_id, page.path.name, reason) for page, reason in result.failed],
                           summary=f"{result.encoded} page(s) encoded, {result.already_cached} were ready")

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        self.checkpoint = checkpoint_of(service, self.model_id)
        return [PageTicket(row) for row in self.to_do(project, service, rows)]

    def work(self) -> EncodeWork:
        return EncodeWork(self.model_id, self.checkpoint)

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        segmenter = self._segmenter(project, service)
        return [row for row in rows if not segmenter.has_embedding(PageRef.of(row))]

    def page_work(self, row: ImageRow) -> float:
        return 1.0  # the model sees every page at one size

    def batch_size(self, gpu: bool) -> int:
        return 4 if gpu else 1

    def store(self, project: Project, ticket: PageTicket, result: Encoded) -> None:
        assert self.segmenter is not None
        self.segmenter.keep_encoded(PageRef.of(ticket.row), result.features, result.extras, result.precision)

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        report.summary = f"{report.done} page(s) encoded, {report.skipped} were ready"

    def parameters(self) -> dict[str, Any]:
        return {"task": "encode"}

    def cost_parameters(self) -> dict[str, Any]:
        return self.parameters()
