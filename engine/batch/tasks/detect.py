"""``detect``: boxes for phrases (Grounding DINO) on every page; the driver proposes them as the job here does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from engine.batch.task import BatchReport, PageTicket
from engine.batch.tasks.reading import page_rgb
from engine.detection.detect import (
    CACHE_FOLDER,
    DetectOptions,
    DetectReport,
    PhrasePrompt,
    detect,
    page_cache_key,
    propose_output,
    run_models,
)
from engine.detection.raw import PageOutput, RawCache
from engine.detection.tiling import page_views
from engine.errors import MarginaliaError
from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService, checkpoint_of
from engine.project import Project
from engine.segmentation.segmenter import Segmenter


@dataclass
class DetectWork:
    model_id: str
    checkpoint: str
    phrases: list[str]
    options: DetectOptions

    def prepare(self, ticket: PageTicket) -> Image.Image:
        return page_rgb(ticket.row)

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[Image.Image],
                cancel: CancelToken) -> list[PageOutput]:
        """Views of one size from several pages pass the model together, as on a GPU here."""
        batch = self.options.batch or (4 if service.manager.device.device.startswith("cuda") else 1)
        cancel.raise_if_cancelled()
        return run_models(service, self.model_id, inputs, self.phrases, self.options.tiling, batch)


@dataclass
class DetectTask:
    name: ClassVar[str] = "detect"
    verb: ClassVar[str] = "Finding"
    model_id: str
    prompts: list[PhrasePrompt]
    options: DetectOptions
    creator: str
    refine: Segmenter | None = None  # here only: SAM's mask for each box (made where the embeddings are)
    checkpoint: str = ""
    run_id: int = 0
    report: DetectReport = field(default_factory=DetectReport)

    @property
    def phrases(self) -> list[str]:
        return [p.phrase.strip() for p in self.prompts]

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        found = detect(project, service, self.model_id, image_ids, self.prompts, self.options, creator=self.creator,
                       refine=self.refine, progress=progress, cancel=cancel)
        return BatchReport(self.name, pages=len(image_ids), done=found.pages, summary=found.summary(),
                           run_id=found.run_id)

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        """Pages whose raw output is cached are proposed from the cache now (as the job here would), the others
        go to the workers."""
        if self.refine is not None:
            raise MarginaliaError("Refining boxes with SAM runs on this computer only; run without it on the cluster, "
                                  "then refine here.")
        self.checkpoint, self.run_id = checkpoint_of(service, self.model_id), run_id
        cache = self._cache(project)
        tickets = []
        for row in rows:
            output = cache.get(page_cache_key(row, self.model_id, self.checkpoint, self.phrases, self.options))
            if output is None:
                tickets.append(PageTicket(row))
            else:
                self._propose(project, row, output)
        return tickets

    def work(self) -> DetectWork:
        return DetectWork(self.model_id, self.checkpoint, self.phrases, self.options)

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        if self.refine is not None:
            return rows  # SAM's masks are made for every page, its boxes cached or not
        checkpoint, cache = checkpoint_of(service, self.model_id), self._cache(project)
        return [row for row in rows if not cache.path(page_cache_key(row, self.model_id, checkpoint, self.phrases,
                                                                     self.options)).is_file()]

    def page_work(self, row: ImageRow) -> float:
        return page_views(row.width, row.height, self.options.tiling)

    def batch_size(self, gpu: bool) -> int:
        return 4 if gpu else 1

    def store(self, project: Project, ticket: PageTicket, result: PageOutput) -> None:
        self._cache(project).put(page_cache_key(ticket.row, self.model_id, self.checkpoint, self.phrases,
                                                self.options), result)
        self.report.model_runs += 1
        self._propose(project, ticket.row, result)

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        report.summary = self.report.summary()

    def parameters(self) -> dict[str, Any]:
        return {"phrases": self.phrases, "categories": [p.category_id for p in self.prompts],
                "box_threshold": self.options.box_threshold, "text_threshold": self.options.text_threshold,
                "tiling": self.options.tiling.value}

    def cost_parameters(self) -> dict[str, Any]:
        return {"tiling": self.options.tiling.value, "refined_with": self.refine.model_id if self.refine else None}

    def _propose(self, project: Project, row: ImageRow, output: PageOutput) -> None:
        propose_output(project, row, output, self.prompts, self.options, self.model_id, self.checkpoint, self.run_id,
                       self.creator, self.report)

    @staticmethod
    def _cache(project: Project) -> RawCache:
        return RawCache(project.folder / "cache" / CACHE_FOLDER)
