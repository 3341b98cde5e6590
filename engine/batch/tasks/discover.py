"""``discover``: DINO attention maps on the workers; the driver caches them and proposes what stands out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from engine.attention.cache import AttentionCache, attention_key
from engine.attention.maps import AttentionMap, attention_of
from engine.attention.run import (
    DiscoverOptions,
    DiscoverReport,
    as_cached,
    discover,
    discovery_category,
    nothing_found_of,
    pages_to_discover,
    propose_regions,
)
from engine.batch.task import BatchReport, PageTicket
from engine.batch.tasks.reading import page_rgb
from engine.errors import MarginaliaError
from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService, checkpoint_of
from engine.pages_done import NothingFound
from engine.project import Project
from engine.segmentation.segmenter import Segmenter


@dataclass(frozen=True, slots=True)
class ComputedMap:
    attention: AttentionMap
    precision: str  # the worker's: part of the cache key, as here


@dataclass
class AttentionWork:
    model_id: str
    checkpoint: str
    patches: int

    def prepare(self, ticket: PageTicket) -> Image.Image:
        return page_rgb(ticket.row)

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[Image.Image],
                cancel: CancelToken) -> list[ComputedMap]:
        precision = service.precision_of(self.model_id)
        computed = []
        for page in inputs:
            cancel.raise_if_cancelled()
            computed.append(ComputedMap(service.run(self.model_id, lambda network, p=page:
                                                    attention_of(network, p, self.patches)), precision))
        return computed


@dataclass
class DiscoverTask:
    name: ClassVar[str] = "discover"
    verb: ClassVar[str] = "Looking"
    model_id: str
    options: DiscoverOptions
    creator: str
    refine: Segmenter | None = None  # here only: SAM's mask for each region (made where the embeddings are)
    checkpoint: str = ""
    run_id: int = 0
    category_id: int = 0
    report: DiscoverReport = field(default_factory=DiscoverReport)
    nothing: NothingFound | None = None

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        found = discover(project, service, self.model_id, image_ids, self.options, creator=self.creator,
                         refine=self.refine, progress=progress, cancel=cancel)
        return BatchReport(self.name, pages=len(image_ids), done=found.pages, skipped=found.skipped,
                           summary=found.summary(), run_id=found.run_id)

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        """Pages whose map is cached (at this computer's precision) are proposed now, without a worker."""
        if self.refine is not None:
            raise MarginaliaError("Refining regions with SAM runs on this computer only; run without it on the "
                                  "cluster, then refine here.")
        self.checkpoint, self.run_id = checkpoint_of(service, self.model_id), run_id
        self.nothing = nothing_found_of(project, self.model_id, self.checkpoint)
        self.category_id = discovery_category(project)
        todo = pages_to_discover(project, rows, self.model_id, self.nothing)
        self.report.skipped = len(rows) - len(todo)
        cache = AttentionCache.of_project(project.folder)
        precision = service.precision_of(self.model_id)
        tickets = []
        for row in todo:
            held = cache.get(self._key(row, precision))
            if held is None:
                tickets.append(PageTicket(row))
            else:
                self._propose(project, row, held)
        return tickets

    def work(self) -> AttentionWork:
        return AttentionWork(self.model_id, self.checkpoint, self.options.patches)

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        """Pages whose map is cached count as to do (telling would mean reading the map)."""
        return pages_to_discover(project, rows, self.model_id,
                                 nothing_found_of(project, self.model_id, checkpoint_of(service, self.model_id)))

    def page_work(self, row: ImageRow) -> float:
        return 1.0  # the model sees every page at one size

    def batch_size(self, gpu: bool) -> int:
        return 8 if gpu else 1

    def store(self, project: Project, ticket: PageTicket, result: ComputedMap) -> None:
        AttentionCache.of_project(project.folder).put(self._key(ticket.row, result.precision), result.attention)
        self.report.model_runs += 1
        self._propose(project, ticket.row, as_cached(result.attention))

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        report.summary = self.report.summary()

    def parameters(self) -> dict[str, Any]:
        return {"head": str(self.options.head), "share": self.options.share, "patches": self.options.patches}

    def cost_parameters(self) -> dict[str, Any]:
        return {"patches": self.options.patches, "refined_with": self.refine.model_id if self.refine else None}

    def _key(self, row: ImageRow, precision: str) -> str:
        return attention_key(row.sha256, row.page_index, self.model_id, f"{self.checkpoint}:{precision}",
                             self.options.patches)

    def _propose(self, project: Project, row: ImageRow, attention: AttentionMap) -> None:
        assert self.nothing is not None
        propose_regions(project, row, attention, self.options, self.category_id, self.model_id, self.checkpoint,
                        self.run_id, self.creator, self.report, self.nothing)
