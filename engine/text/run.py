"""Find text on pages of a project with Hi-SAM: strokes, paragraphs, lines and words become proposals.

``find_text(project, service, model_id, image_ids, levels, options)`` goes page by page as one resumable
job: each page's results are stored in one transaction (a cancelled run keeps the pages it finished), and
a page that already holds this model's results for every level asked for is skipped. Strokes are one RLE
mask per page in Text ▸ Text strokes; paragraphs, lines and words are proposals in Text ▸ Paragraph / Line /
Word, linked to their parents, in reading order, scored by the line's predicted quality.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.annotations import Geometry, shape_fields
from engine.errors import MarginaliaError
from engine.imaging.isolated import load_page_isolated
from engine.inventory import ImageRow, readable_pages
from engine.jobs import CancelToken, JobProgress, WorkClock
from engine.layout.model import LINE, STROKES, TEXT_REGION_CATEGORIES, WORD
from engine.layout.store import TextCategories
from engine.models.runs import recorded_run
from engine.models.service import ModelService, checkpoint_of
from engine.pages_done import NothingFound, categories_found
from engine.project import Project
from engine.store.schema import Annotation, Image
from engine.store.types import AnnotationStatus, SourceKind
from engine.text.hierarchy import FoundParagraph, PageText, TextOptions, read_text
from engine.text.masks import PageMask
from engine.text.windows import plan_windows

LEVELS = ("strokes", "paragraphs", "lines", "words")
PARAGRAPH = TEXT_REGION_CATEGORIES["paragraph"]
_CATEGORY_OF_LEVEL = {"strokes": STROKES, "paragraphs": PARAGRAPH, "lines": LINE, "words": WORD}


@dataclass
class TextReport:
    pages: int = 0
    skipped: int = 0  # already done with this model for every level asked for
    paragraphs: int = 0
    lines: int = 0
    words: int = 0
    strokes: int = 0
    run_id: int | None = None
    seconds: list[float] = field(default_factory=list)
    prompts: int = 0  # point prompts the H-Decoder decoded
    work: int = 0  # windows the pages read were planned in (``page_windows``): what estimates count
    pages_cut: list[str] = field(default_factory=list)  # a window's prompts stopped at the cap with ink left

    def read(self, text: PageText, page: str) -> None:
        """A page read: its prompts counted, and its name kept where a window's prompts were cut at the cap."""
        self.pages += 1
        self.prompts += text.prompts
        if text.windows_cut:
            self.pages_cut.append(page)

    def summary(self) -> str:
        skipped = f", {self.skipped} page(s) already done were left as they were" if self.skipped else ""
        cut = (f". Lines may be missing on {len(self.pages_cut)} page(s) (e.g. {self.pages_cut[0]}): a window there "
               f"holds more text than Find Text prompts in one" if self.pages_cut else "")
        return (f"{self.paragraphs} paragraph(s), {self.lines} line(s), {self.words} word(s) and {self.strokes} "
                f"stroke mask(s) proposed on {self.pages} page(s){skipped}{cut}")


def find_text(project: Project, service: ModelService, model_id: str, image_ids: list[int], levels: set[str],
              options: TextOptions = TextOptions(), *, creator: str,
              progress: Callable[[JobProgress], None] | None = None,
              cancel: CancelToken | None = None) -> TextReport:
    unknown = levels - set(LEVELS)
    if unknown or not levels:
        raise MarginaliaError(f"Levels are {', '.join(LEVELS)}; {', '.join(sorted(unknown)) or 'none'} asked for.")
    pages = readable_pages(project, image_ids)
    checkpoint = checkpoint_of(service, model_id)
    nothing = nothing_found_of(project, model_id, checkpoint)
    report = TextReport()
    parameters = {"levels": sorted(levels), "window": options.window, "points": options.points,
                  "max_prompts": options.max_prompts, "skip_blank": options.skip_blank,
                  "line_score": options.line_score, "nms_score": options.nms_score, "pages": len(pages)}
    with recorded_run(project, model_id, device=service.manager.device.device, parameters=parameters,
                      model_version=checkpoint[:12]) as run:
        report.run_id = run.id
        work = [page_windows(row, options) for row in pages]
        clock = WorkClock(sum(work))
        for index, row in enumerate(pages):
            if cancel is not None:
                cancel.raise_if_cancelled()
            wanted = levels_wanted(project, row, levels, model_id, nothing)
            if not wanted:
                report.skipped += 1
                clock.skipped(work[index])
                continue
            image = np.asarray(load_page_isolated(Path(row.path), row.page_index, image_format=row.format)
                               .convert("RGB"))
            asked = options_for(options, wanted)
            before = clock.done

            def windows_done(done: int, total: int, name: str = row.display_name) -> None:
                clock.did(1)
                if progress is not None:
                    progress(JobProgress(round(clock.done), round(clock.total),
                                         f"{name}: window {done} of {total} · {clock.left()}"))

            page_started = time.perf_counter()
            text = service.run(model_id, lambda network, o=asked, i=image: read_text(network, i, o, cancel,
                                                                                     windows_done))
            store_page_text(project, row, text, wanted, model_id, checkpoint, run.id, creator, report, nothing)
            report.seconds.append(time.perf_counter() - page_started)
            clock.did(max(0.0, before + work[index] - clock.done))  # storing the page
            report.work += work[index]
            if progress is not None:
                progress(JobProgress(round(clock.done), round(clock.total), f"{row.display_name}: read · "
                                                                            f"{clock.left()}",
                                     pages_read=report.pages, work_read=report.work))
        run.timings["seconds_per_page"] = report.seconds
    return report


def page_windows(row: ImageRow, options: TextOptions) -> int:
    """The windows a page is read in: its share of a Find Text run's work (12 on a 2577×3633 scan at the model's
    scale, one for a page the model sees whole), whatever of them turns out blank."""
    return len(plan_windows(row.width, row.height, options.window))


def levels_wanted(project: Project, row: ImageRow, levels: set[str], model_id: str, nothing: NothingFound) -> set[str]:
    """The levels still to find on a page: neither stored by this model nor found absent before."""
    return levels_wanted_of(project, [row], levels, model_id, nothing)[row.id]


def levels_wanted_of(project: Project, rows: list[ImageRow], levels: set[str], model_id: str,
                     nothing: NothingFound) -> dict[int, set[str]]:
    """:func:`levels_wanted` of each of ``rows`` (by id), asked of them all at once."""
    found = categories_found(project, [row.id for row in rows], model_id)
    return {row.id: levels - {level for level, name in _CATEGORY_OF_LEVEL.items() if name in found.get(row.id, ())}
            - nothing.levels(row) for row in rows}


def options_for(options: TextOptions, wanted: set[str]) -> TextOptions:
    """``options`` reading only what a page still needs (strokes, the hierarchy, or both)."""
    return TextOptions(**{**options.__dict__, "strokes": "strokes" in wanted, "hierarchy": bool(wanted - {"strokes"})})


def nothing_found_of(project: Project, model_id: str, checkpoint: str) -> NothingFound:
    return NothingFound(project.folder / "cache" / "text" / "nothing-found.json", model_id, checkpoint)


def store_page_text(project: Project, row: ImageRow, text: PageText, wanted: set[str], model_id: str,
                    checkpoint: str, run_id: int, creator: str, report: TextReport, nothing: NothingFound) -> None:
    """A page's text stored (one transaction), and the levels where nothing was found remembered."""
    stored = _store(project, row, text, wanted, model_id, checkpoint, run_id, creator, report)
    nothing.remember(row, {level for level in wanted if not stored.get(level)})
    report.read(text, row.display_name)


def _store(project: Project, row: ImageRow, text: PageText, levels: set[str], model_id: str, checkpoint: str,
           run_id: int, creator: str, report: TextReport) -> dict[str, int]:
    """One transaction: the page's strokes and its paragraphs ⊃ lines ⊃ words (only the levels asked for;
    a line's parent is its paragraph when paragraphs are kept). How many of each level were stored."""
    before = {"strokes": report.strokes, "paragraphs": report.paragraphs, "lines": report.lines,
              "words": report.words}
    with project.unit_of_work() as session:
        image = session.get_one(Image, row.id)
        categories = TextCategories(session)
        siblings: dict[int | None, int] = {}  # reading order: the next place among a parent's children

        def add(level: str, mask: PageMask | None, geometry: Geometry | None, score: float | None,
                parent: Annotation | None) -> Annotation:
            parent_id = parent.id if parent is not None else None
            order = siblings.get(parent_id, 0)
            siblings[parent_id] = order + 1
            shape = geometry or mask.geometry(image.width, image.height)  # type: ignore[union-attr]
            annotation = Annotation(
                image_id=row.id, category_id=categories.named(_CATEGORY_OF_LEVEL[level], True).id,
                status=AnnotationStatus.PROPOSED, creator=creator, source_kind=SourceKind.MODEL,
                source_model=model_id, source_version=checkpoint[:12], prompt="", model_run_id=run_id,
                score=None if score is None else round(min(max(score, 0.0), 1.0), 4),
                parent_id=parent_id, reading_order=order,
                **shape_fields(image, shape))
            session.add(annotation)
            session.flush()
            return annotation

        if "strokes" in levels and text.strokes is not None and text.strokes.any():
            from engine.coco.geometry import rle_from_mask

            add("strokes", None, Geometry(rle=rle_from_mask(text.strokes)), None, None)
            report.strokes += 1
        for paragraph in text.paragraphs:
            _add_paragraph(add, paragraph, levels, report)
    after = {"strokes": report.strokes, "paragraphs": report.paragraphs, "lines": report.lines, "words": report.words}
    return {level: after[level] - before[level] for level in after}


def _add_paragraph(add: Callable[..., Annotation], paragraph: FoundParagraph, levels: set[str],
                   report: TextReport) -> None:
    parent = None
    if "paragraphs" in levels:
        parent = add("paragraphs", paragraph.mask, None, paragraph.score, None)
        report.paragraphs += 1
    for line in paragraph.lines:
        line_parent = parent
        if "lines" in levels:
            line_parent = add("lines", line.mask, None, line.score, parent)
            report.lines += 1
        if "words" in levels:
            for word in line.words:
                add("words", word, None, line.score, line_parent)
                report.words += 1
