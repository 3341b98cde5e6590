"""``text``: Hi-SAM's strokes, paragraphs, lines and words; the driver stores each page as the job here does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.batch.task import BatchReport, PageTicket
from engine.batch.tasks.reading import page_array
from engine.inventory import ImageRow
from engine.jobs import CancelToken, ProgressCallback
from engine.models.service import ModelService, checkpoint_of
from engine.pages_done import NothingFound
from engine.project import Project
from engine.text.hierarchy import PageText, TextOptions, read_text
from engine.text.run import (
    TextReport,
    find_text,
    levels_wanted_of,
    nothing_found_of,
    options_for,
    page_windows,
    store_page_text,
)


@dataclass
class TextWork:
    model_id: str
    checkpoint: str
    options: TextOptions

    def prepare(self, ticket: PageTicket) -> np.ndarray:
        return page_array(ticket.row)

    def compute(self, service: ModelService, tickets: list[PageTicket], inputs: list[np.ndarray],
                cancel: CancelToken) -> list[PageText]:
        """One page at a time: a page is hundreds of prompt decodes already."""
        return [service.run(self.model_id, lambda network, o=options_for(self.options, ticket.ask), i=image:
                            read_text(network, i, o, cancel)) for ticket, image in zip(tickets, inputs, strict=True)]


@dataclass
class TextTask:
    name: ClassVar[str] = "text"
    verb: ClassVar[str] = "Reading text"
    model_id: str
    levels: set[str]
    options: TextOptions
    creator: str
    checkpoint: str = ""
    run_id: int = 0
    report: TextReport = field(default_factory=TextReport)
    nothing: NothingFound | None = None

    def run_here(self, project: Project, service: ModelService, image_ids: list[int], *,
                 progress: ProgressCallback | None, cancel: CancelToken | None) -> BatchReport:
        found = find_text(project, service, self.model_id, image_ids, self.levels, self.options, creator=self.creator,
                          progress=progress, cancel=cancel)
        return BatchReport(self.name, pages=len(image_ids), done=found.pages, skipped=found.skipped,
                           summary=found.summary(), run_id=found.run_id)

    def start(self, project: Project, service: ModelService, rows: list[ImageRow], run_id: int) -> list[PageTicket]:
        self.checkpoint, self.run_id = checkpoint_of(service, self.model_id), run_id
        self.nothing = nothing_found_of(project, self.model_id, self.checkpoint)
        wanted = levels_wanted_of(project, rows, self.levels, self.model_id, self.nothing)
        tickets = [PageTicket(row, ask=wanted[row.id]) for row in rows if wanted[row.id]]
        self.report.skipped = len(rows) - len(tickets)
        return tickets

    def work(self) -> TextWork:
        return TextWork(self.model_id, self.checkpoint, self.options)

    def to_do(self, project: Project, service: ModelService, rows: list[ImageRow]) -> list[ImageRow]:
        nothing = nothing_found_of(project, self.model_id, checkpoint_of(service, self.model_id))
        wanted = levels_wanted_of(project, rows, self.levels, self.model_id, nothing)
        return [row for row in rows if wanted[row.id]]

    def page_work(self, row: ImageRow) -> float:
        return page_windows(row, self.options)

    def batch_size(self, gpu: bool) -> int:
        return 1

    def store(self, project: Project, ticket: PageTicket, result: PageText) -> None:
        assert self.nothing is not None
        store_page_text(project, ticket.row, result, ticket.ask, self.model_id, self.checkpoint, self.run_id,
                        self.creator, self.report, self.nothing)

    def finish(self, project: Project, service: ModelService, report: BatchReport) -> None:
        report.summary = self.report.summary()

    def parameters(self) -> dict[str, Any]:
        return {"levels": sorted(self.levels), "window": self.options.window, "points": self.options.points,
                "max_prompts": self.options.max_prompts, "skip_blank": self.options.skip_blank,
                "line_score": self.options.line_score, "nms_score": self.options.nms_score}

    def cost_parameters(self) -> dict[str, Any]:
        return self.parameters()
