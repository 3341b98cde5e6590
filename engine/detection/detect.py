"""Find regions by description on pages of a project: Grounding DINO's boxes become proposals.

``detect(project, service, model_id, image_ids, prompts, options)`` goes page by page: the page's raw
detector output comes from the cache, or the model runs on the page and its tiles (the next page is
decoded meanwhile, in the decoder processes); the output is filtered at the run's thresholds, mapped to
page pixels and merged; each box becomes a proposal in its phrase's category, with the detector's score,
the phrase as prompt, and the run. A box already proposed for that phrase on that page (accepted, still
proposed, or rejected: a rejection is remembered) is not proposed again, so re-running, or resuming a
cancelled run, adds only what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select

from engine.annotations import Geometry, Provenance, create_annotations, delete_annotations
from engine.detection.content import content_box
from engine.detection.raw import PageOutput, RawCache, cache_key, refilter
from engine.detection.tiling import Found, Tiling, merge, page_views, plan_views, wants_tiles
from engine.detection.tiling import iou as box_iou
from engine.errors import MarginaliaError
from engine.imaging.isolated import load_page_isolated
from engine.inventory import ImageRow, list_images, readable_pages
from engine.jobs import CancelToken, JobProgress, WorkClock
from engine.models.runs import recorded_run
from engine.models.service import ModelService, checkpoint_of
from engine.project import Project
from engine.segmentation.annotate import mask_in_box
from engine.segmentation.segmenter import PageRef, Segmenter
from engine.store.schema import Annotation
from engine.store.types import AnnotationStatus, SourceKind

SAME_BOX = 0.9  # IoU above which a box is the one proposed before
SCORE_DECIMALS = 4  # the decimals a proposal's score is stored with
# At most this many proposals of one run on one page, the best first: thousands (a low threshold, a phrase
# like "letter") bury a page that no one can review; the report says how many were left out, and why.
MAX_PROPOSALS_PER_PAGE = 500
VIEWS_AT_ONCE = 1  # a page's views one by one: batching its three large views was no faster on a CPU (measured)
CACHE_FOLDER = "detection"


@dataclass(frozen=True)
class PhrasePrompt:
    phrase: str
    category_id: int


@dataclass(frozen=True)
class DetectOptions:
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    tiling: Tiling = Tiling.AUTO
    batch: int | None = None  # views through the model at once; None: 4 on a GPU, 1 on the CPU


@dataclass
class DetectReport:
    pages: int = 0
    model_runs: int = 0  # pages the model looked at (the others came from the cache)
    model_views: int = 0  # … the views they were planned in (``page_views``): what estimates count
    proposed: int = 0
    already_proposed: int = 0  # boxes found again, proposed before (or rejected before): not added
    run_id: int | None = None
    left_out: int = 0  # weaker boxes beyond the per-page limit
    crowded_pages: int = 0

    def summary(self) -> str:
        text = (f"{self.proposed} new proposal(s) on {self.pages} page(s) ({self.already_proposed} found again and "
                f"left as they were; the model ran on {self.model_runs} page(s), the others were read from the cache)")
        if self.left_out:
            text += (f". On {self.crowded_pages} page(s) more than {MAX_PROPOSALS_PER_PAGE} boxes passed the "
                     f"threshold: the best {MAX_PROPOSALS_PER_PAGE} of each were proposed, {self.left_out} weaker "
                     "one(s) left out; a higher box threshold or a more specific phrase finds fewer, better ones")
        return text


def detect(project: Project, service: ModelService, model_id: str, image_ids: list[int], prompts: list[PhrasePrompt],
           options: DetectOptions = DetectOptions(), *, creator: str, refine: Segmenter | None = None,
           progress: Callable[[JobProgress], None] | None = None, cancel: CancelToken | None = None) -> DetectReport:
    """``refine``: a SAM segmenter; each new box becomes SAM's mask for it (RLE and polygons, kept inside the
    box), made from the page's embedding, encoded once per page."""
    if not prompts or not any(p.phrase.strip() for p in prompts):
        raise MarginaliaError("Give at least one phrase to look for, such as “decorated initial”.")
    phrases = [p.phrase.strip() for p in prompts]
    pages = readable_pages(project, image_ids)
    cache = RawCache(project.folder / "cache" / CACHE_FOLDER)
    checkpoint = checkpoint_of(service, model_id)
    report = DetectReport()
    parameters = {"phrases": phrases, "categories": [p.category_id for p in prompts], "box_threshold":
                  options.box_threshold, "text_threshold": options.text_threshold, "tiling": options.tiling.value,
                  "pages": len(pages), "refined_with": refine.model_id if refine is not None else None}
    # The device the manager runs models on; the model itself loads only if a page is not cached.
    with recorded_run(project, model_id, device=service.manager.device.device, parameters=parameters,
                      model_version=checkpoint[:12]) as run, ThreadPoolExecutor(1) as decoder:
        report.run_id = run.id
        work = [page_views(row.width, row.height, options.tiling) for row in pages]
        clock = WorkClock(sum(work))
        batch = options.batch or (4 if service.manager.device.device.startswith("cuda") else 1)
        keys = [page_cache_key(row, model_id, checkpoint, phrases, options) for row in pages]
        # The pages the model has to see, in groups that go through it together (on a GPU, several
        # pages' views at once); the next group is decoded while the model works on one.
        unseen = [index for index, key in enumerate(keys) if not cache.path(key).is_file()]
        groups = [unseen[start:start + batch] for start in range(0, len(unseen), batch)]
        group_of = {index: number for number, group in enumerate(groups) for index in group}
        decoding: dict[int, list[Future[Image.Image]]] = {}

        def decode_group(number: int) -> None:
            if number < len(groups) and number not in decoding:
                decoding[number] = [decoder.submit(_decode, pages[index]) for index in groups[number]]

        computed: dict[int, PageOutput] = {}
        for index, row in enumerate(pages):
            if cancel is not None:
                cancel.raise_if_cancelled()
            output = computed.pop(index, None)
            seen_now = output is not None
            if output is None and index not in group_of:
                output = cache.get(keys[index])
            if output is None:  # not seen yet, or its cache entry turned out damaged
                number = group_of.get(index)
                if number is None:
                    group, images = [index], [_decode(row)]
                else:
                    decode_group(number)
                    group, images = groups[number], [future.result() for future in decoding.pop(number)]
                    decode_group(number + 1)
                outputs = run_models(service, model_id, images, phrases, options.tiling, batch)
                for member, member_output in zip(group, outputs, strict=True):
                    cache.put(keys[member], member_output)
                    computed[member] = member_output
                report.model_runs += len(group)
                report.model_views += sum(work[member] for member in group)
                output = computed.pop(index)
                seen_now = True
            added = propose_output(project, row, output, prompts, options, model_id, checkpoint, run.id, creator,
                                   report, _masks(refine, row, cancel) if refine is not None else None)
            if seen_now or refine is not None:  # SAM's masks are made here, cached boxes or not
                clock.did(work[index])
            else:
                clock.skipped(work[index])
            if progress is not None:
                progress(JobProgress(round(clock.done), round(clock.total), f"{row.display_name}: {added} new · "
                                                                            f"{clock.left()}",
                                     pages_read=report.model_runs, work_read=report.model_views))
        run.timings["model_pages"] = report.model_runs
    return report


def propose_output(project: Project, row: ImageRow, output: PageOutput, prompts: list[PhrasePrompt],
                   options: DetectOptions, model_id: str, checkpoint: str, run_id: int, creator: str,
                   report: DetectReport, shape: Callable[[Found], Geometry] | None = None) -> int:
    """One page's raw output filtered at the run's thresholds, merged, and proposed (what was proposed before
    is left as it was); counted in ``report``. How many proposals are new."""
    found = merge(refilter(output, options.box_threshold, options.text_threshold), output.views)
    if len(found) > MAX_PROPOSALS_PER_PAGE:
        report.left_out += len(found) - MAX_PROPOSALS_PER_PAGE
        report.crowded_pages += 1
        found = sorted(found, key=lambda item: item.score, reverse=True)[:MAX_PROPOSALS_PER_PAGE]
    added, again = _propose(project, row, found, prompts, model_id, checkpoint, run_id, creator, shape)
    report.pages += 1
    report.proposed += added
    report.already_proposed += again
    return added


def page_cache_key(row: ImageRow, model_id: str, checkpoint: str, phrases: list[str], options: DetectOptions) -> str:
    return cache_key(row.sha256, row.page_index, model_id, checkpoint, phrases, options.tiling.value)


def _decode(row: ImageRow) -> Image.Image:
    return load_page_isolated(Path(row.path), row.page_index, image_format=row.format).convert("RGB")


def run_model(service: ModelService, model_id: str, image: Image.Image, phrases: list[str],
              tiling: Tiling) -> PageOutput:
    """The detector's raw output on the whole page and, when tiling, on each tile at the model's own scale.
    ``image`` is the page at full resolution."""
    return run_models(service, model_id, [image], phrases, tiling, VIEWS_AT_ONCE)[0]


def run_models(service: ModelService, model_id: str, images: list[Image.Image], phrases: list[str],
               tiling: Tiling, batch: int) -> list[PageOutput]:
    """``run_model`` for several pages: views of one size (tiles; pages of a book scanned alike) pass
    ``batch`` at a time. Views of other sizes never share a batch: the processor would pad them, and
    the backbone sees the padding, so a page's boxes would depend on what it was batched with."""

    def work(network: Any) -> list[PageOutput]:
        planned = [plan_views(image.width, image.height, network.input_side, tiling,
                              getattr(network, "input_long_side", None),
                              content_box(image) if wants_tiles(image.width, image.height, network.input_side, tiling)
                              else None) for image in images]
        crops = [image.crop(tuple(round(v) for v in view.box))
                 for image, views in zip(images, planned, strict=True) for view in views]
        by_size: dict[tuple[int, int], list[int]] = {}
        for position, crop in enumerate(crops):
            by_size.setdefault(crop.size, []).append(position)
        raws: list[Any] = [None] * len(crops)
        for positions in by_size.values():
            for start in range(0, len(positions), batch):
                chunk = positions[start:start + batch]
                for position, raw in zip(chunk, network.raw_outputs([crops[p] for p in chunk], phrases), strict=True):
                    raws[position] = raw
        outputs, start = [], 0
        for views in planned:
            own = raws[start:start + len(views)]
            start += len(views)
            outputs.append(PageOutput(views, [r.boxes for r in own], [r.scores for r in own],
                                      [r.probs for r in own], own[0].token_phrase))
        return outputs

    return service.run(model_id, work)


def same_detection(box: tuple[float, float, float, float], stored: tuple[float, float, float, float]) -> bool:
    """Whether a stored proposal (its box, or the box of a mask SAM made inside a detector box) is what
    ``box`` proposes: nearly the same box, or a shape filling a good part of it and lying within it."""
    if box_iou(box, stored) >= SAME_BOX:
        return True
    inside = (stored[0] >= box[0] - 2 and stored[1] >= box[1] - 2 and stored[2] <= box[2] + 2
              and stored[3] <= box[3] + 2)
    return inside and box_iou(box, stored) >= 0.25


def _masks(segmenter: Segmenter, row: ImageRow, cancel: CancelToken | None) -> Callable[[Found], Geometry]:
    """SAM's mask for a box, on the page's embedding (encoded once, on first use), cut to the box."""
    embedding: list[Any] = []

    def shape(item: Found) -> Geometry:
        if not embedding:
            embedding.append(segmenter.embedding(PageRef.of(row), cancel))
        # SAM found nothing in the box: the box itself stays the proposal.
        return mask_in_box(segmenter, embedding[0], item.box) or _box_geometry(item)

    return shape


def _box_geometry(item: Found) -> Geometry:
    x0, y0, x1, y1 = item.box
    return Geometry(bbox=(round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)))


def _propose(project: Project, row: ImageRow, found: list[Found], prompts: list[PhrasePrompt], model_id: str,
             checkpoint: str, run_id: int, creator: str,
             shape: Callable[[Found], Geometry] | None = None) -> tuple[int, int]:
    """Add the boxes not proposed before for their phrase on this page; (added, found again)."""
    with project.unit_of_work() as session:
        before = session.execute(select(Annotation.prompt, Annotation.bbox_x, Annotation.bbox_y, Annotation.bbox_w,
                                        Annotation.bbox_h).where(Annotation.image_id == row.id,
                                                                 Annotation.source_model == model_id)).all()
    earlier: dict[str, list[tuple[float, float, float, float]]] = {}
    for prompt, x, y, w, h in before:
        earlier.setdefault(prompt, []).append((x, y, x + w, y + h))
    again = 0
    by_category: dict[int, tuple[list[Geometry], list[Provenance]]] = {}
    for item in found:
        prompt = prompts[item.phrase]
        if any(same_detection(item.box, other) for other in earlier.get(prompt.phrase, [])):
            again += 1
            continue
        earlier.setdefault(prompt.phrase, []).append(item.box)
        geometries, provenances = by_category.setdefault(prompt.category_id, ([], []))
        geometries.append(shape(item) if shape is not None else _box_geometry(item))
        provenances.append(Provenance(SourceKind.MODEL, model_id, checkpoint[:12], prompt.phrase,
                                      round(min(max(item.score, 0.0), 1.0), SCORE_DECIMALS), run_id))
    added = 0
    for category_id, (geometries, provenances) in by_category.items():
        create_annotations(project, image_id=row.id, category_id=category_id, geometries=geometries,
                           creator=creator, provenances=provenances, status=AnnotationStatus.PROPOSED)
        added += len(geometries)
    return added, again


def apply_thresholds(project: Project, service: ModelService, model_id: str, image_id: int,
                     prompts: list[PhrasePrompt], options: DetectOptions, *, creator: str) -> tuple[int, int] | None:
    """Re-filter one page's cached output at new thresholds, without the model: proposals of these phrases
    that nobody reviewed yet and that no longer pass are removed, boxes that now pass are proposed.
    Reviewed ones (accepted, rejected) stay as they are. (added, removed); ``None`` when the page was
    not run with these phrases and tiling yet."""
    (row,) = list_images(project, [image_id])
    phrases = [p.phrase.strip() for p in prompts]
    checkpoint = checkpoint_of(service, model_id)
    cache = RawCache(project.folder / "cache" / CACHE_FOLDER)
    output = cache.get(page_cache_key(row, model_id, checkpoint, phrases, options))
    if output is None:
        return None
    kept = merge(refilter(output, options.box_threshold, options.text_threshold), output.views)
    with project.unit_of_work() as session:
        pending = session.execute(select(Annotation.id, Annotation.prompt, Annotation.score, Annotation.bbox_x,
                                         Annotation.bbox_y, Annotation.bbox_w, Annotation.bbox_h).where(
            Annotation.image_id == image_id, Annotation.source_model == model_id,
            Annotation.status == AnnotationStatus.PROPOSED, Annotation.prompt.in_(phrases))).all()
    # Stale: scored below the box threshold, or no longer among the boxes the raw output passes. The stored score
    # is rounded: one at the threshold itself is judged by the raw output alone (0.35 stored for 0.35003 was
    # removed at 0.35, then proposed again as a new proposal).
    below = options.box_threshold - 0.5 * 10 ** -SCORE_DECIMALS
    stale = [annotation_id for annotation_id, prompt, score, x, y, w, h in pending
             if (score or 0.0) < below or not any(
                 prompts[f.phrase].phrase.strip() == prompt and same_detection(f.box, (x, y, x + w, y + h))
                 for f in kept)]
    if stale:
        delete_annotations(project, stale)
    with recorded_run(project, model_id, device="cache", model_version=checkpoint[:12], parameters={
            "phrases": phrases, "box_threshold": options.box_threshold, "text_threshold": options.text_threshold,
            "tiling": options.tiling.value, "refiltered_page": image_id}) as run:
        added, _ = _propose(project, row, kept, prompts, model_id, checkpoint, run.id, creator)
    return added, len(stale)