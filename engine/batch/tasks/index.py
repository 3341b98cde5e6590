"""``index``: CLIP page vectors computed on the workers, stored by the driver; then regions and the index here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine.batch.task import BatchReport, PageTicket
from engine.imaging.thumbnails import rendition_path
from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService, checkpoint_of
from engine.project import Project
from engine.retrieval.indexer import (
    ClipInput,
    clip_input,
    clip_pixels,
    encode_pixels,
    index_collection,
    index_regions,
)
from engine.retrieval.vectors import (
    NewVector,
    page_content,
    pages_to_embed,
    store_vectors,
)


@dataclass
class ClipWork:
    model_id: str
    checkpoint: str
    spec: ClipInput
    thumbnails: str  # the project's thumbnail folder: its search renditions spare decoding, where visible

    def prepare(self, ticket: PageTicket) -> np.ndarray:
        row = ticket.row
        return clip_pixels(Path(row.path), row.page_index, row.format, row.width, row.height, self.spec,
                           rendition_path(Path(self.thumbnails), row.sha256, row.page_index))

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[np.ndarray],
                cancel: CancelToken) -> list[np.ndarray]:
        cancel.raise_if_cancelled()
        return service.run_batches(self.model_id, inputs, encode_pixels, batch_size=len(inputs))


@dataclass
class IndexTask:
    name: ClassVar[str] = "index"
    verb: ClassVar[str] = "Indexing"
    model_id: str
    checkpoint: str = ""
    spec: ClipInput | None = None
    thumbnails: str = ""

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        indexed = index_collection(project, service, self.model_id, progress=progress, cancel=cancel)
        return BatchReport(self.name, pages=indexed.pages.embedded + indexed.pages.already,
                           done=indexed.pages.embedded, skipped=indexed.pages.already,
                           failed=[(0, path, reason) for path, reason in indexed.pages.failed + indexed.regions.failed],
                           summary=indexed.summary())

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        self.checkpoint = checkpoint_of(service, self.model_id)
        self.spec, self.thumbnails = clip_input(service, self.model_id), str(project.thumbnail_dir)
        return [PageTicket(row) for row in self.to_do(project, service, rows)]

    def work(self) -> ClipWork:
        assert self.spec is not None
        return ClipWork(self.model_id, self.checkpoint, self.spec, self.thumbnails)

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        missing = {image.id for image in pages_to_embed(project, self.model_id)}
        return [row for row in rows if row.id in missing]

    def page_work(self, row: ImageRow) -> float:
        return 1.0  # the model sees every page at one size

    def batch_size(self, gpu: bool) -> int:
        return 64 if gpu else 16

    def store(self, project: Project, ticket: PageTicket, result: np.ndarray) -> None:
        row = ticket.row
        store_vectors(project, self.model_id, [NewVector(row.id, None, page_content(row.sha256, row.page_index),
                                                         result)])

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        """The curators' accepted regions (few) are embedded here; the index is saved for the next search."""
        from engine.retrieval.search import prepare_text_tower

        regions = index_regions(project, service, self.model_id)
        prepare_text_tower(service, self.model_id)
        report.summary = (f"{report.done} page(s) now, {report.skipped} already; {regions.embedded} region(s) now, "
                          f"{regions.already} already")

    def parameters(self) -> dict[str, Any]:
        return {"task": "index"}

    def cost_parameters(self) -> dict[str, Any]:
        return self.parameters()
