"""Attention of pages (cached), and discovery: what stands out on pages becomes proposals, as one job.

``attention_for`` gives a page's map from the cache or the model. ``discover`` goes page by page (a
cancelled run keeps the pages it finished; a page holding this model's proposals, or where it found
nothing before, is skipped): the regions holding most of the attention become proposals in the
"Salient region" category, as masks (the patches), or, with ``refine``, as SAM's mask for each region's
box, with the share of attention as score and one ModelRun.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.annotations import Geometry, Provenance, create_annotations
from engine.attention.cache import AttentionCache, attention_key
from engine.attention.discover import Region, regions_of
from engine.attention.maps import DEFAULT_MASS, DEFAULT_PATCHES, AttentionMap, attention_of
from engine.categories import get_or_create_category
from engine.imaging.isolated import load_page_isolated
from engine.inventory import ImageRow, readable_pages
from engine.jobs import CancelToken, JobProgress, WorkClock
from engine.models.runs import recorded_run
from engine.models.service import ModelService, checkpoint_of
from engine.pages_done import NothingFound, categories_found
from engine.project import Project
from engine.segmentation.annotate import mask_in_box
from engine.segmentation.segmenter import PageRef, Segmenter
from engine.store.types import AnnotationStatus, SourceKind

CATEGORY = "Salient region"


@dataclass(frozen=True)
class DiscoverOptions:
    head: str | int = "mean"
    share: float = DEFAULT_MASS  # of the attention mass the regions hold
    patches: int = DEFAULT_PATCHES  # along the page's longer side
    min_patches: int = 2


@dataclass
class DiscoverReport:
    pages: int = 0
    skipped: int = 0
    proposed: int = 0
    model_runs: int = 0  # pages whose map was computed (the others came from the cache)
    run_id: int | None = None

    def summary(self) -> str:
        skipped = f"; {self.skipped} page(s) done before were left as they were" if self.skipped else ""
        return f"{self.proposed} region(s) that stand out proposed on {self.pages} page(s){skipped}"


def attention_for(project: Project, service: ModelService, model_id: str, row: ImageRow,
                  patches: int = DEFAULT_PATCHES, cache: AttentionCache | None = None,
                  decoded: Future[Image.Image] | None = None) -> tuple[AttentionMap, bool]:
    """The page's map, and whether the model had to compute it (``decoded``: the page, being decoded)."""
    cache = cache or AttentionCache.of_project(project.folder)
    key = attention_key(row.sha256, row.page_index, model_id,
                        f"{checkpoint_of(service, model_id)}:{service.precision_of(model_id)}", patches)
    found = cache.get(key)
    if found is not None:
        return found, False
    page = decoded.result() if decoded is not None else _decode(row)
    computed = service.run(model_id, lambda network: attention_of(network, page, patches))
    cache.put(key, computed)
    return as_cached(computed), True


def as_cached(computed: AttentionMap) -> AttentionMap:
    """A map at the precision the cache keeps: a page gives the same regions fresh or from the cache."""
    return AttentionMap(computed.heads.astype(np.float16).astype(np.float32), computed.page_width,
                        computed.page_height,
                        None if computed.pca is None else computed.pca.astype(np.float16).astype(np.float32))


def discover(project: Project, service: ModelService, model_id: str, image_ids: list[int],
             options: DiscoverOptions = DiscoverOptions(), *, creator: str, refine: Segmenter | None = None,
             progress: Callable[[JobProgress], None] | None = None,
             cancel: CancelToken | None = None) -> DiscoverReport:
    pages = readable_pages(project, image_ids)
    checkpoint = checkpoint_of(service, model_id)
    nothing = nothing_found_of(project, model_id, checkpoint)
    cache = AttentionCache.of_project(project.folder)
    report = DiscoverReport()
    category_id = discovery_category(project)
    parameters = {"head": str(options.head), "share": options.share, "patches": options.patches,
                  "pages": len(pages), "refined_with": refine.model_id if refine is not None else None}
    todo = pages_to_discover(project, pages, model_id, nothing)
    report.skipped = len(pages) - len(todo)
    with recorded_run(project, model_id, device=service.manager.device.device, parameters=parameters,
                      model_version=checkpoint[:12]) as run, ThreadPoolExecutor(1) as decoder:
        report.run_id = run.id
        clock = WorkClock(len(todo))
        ahead = decoder.submit(_decode, todo[0]) if todo else None
        for index, row in enumerate(todo):
            if cancel is not None:
                cancel.raise_if_cancelled()
            decoded = ahead
            # The next page is decoded while the model reads this one.
            ahead = decoder.submit(_decode, todo[index + 1]) if index + 1 < len(todo) else None
            attention, computed = attention_for(project, service, model_id, row, options.patches, cache, decoded)
            report.model_runs += computed
            regions = propose_regions(project, row, attention, options, category_id, model_id, checkpoint, run.id,
                                      creator, report, nothing, refine, cancel)
            if computed or refine is not None:  # SAM's masks are made here, cached map or not
                clock.did(1)
            else:
                clock.skipped(1)
            if progress is not None:
                progress(JobProgress(index + 1, len(todo), f"{row.display_name}: {len(regions)} region(s) · "
                                                           f"{clock.left()}", pages_read=report.model_runs))
    return report


def discovery_category(project: Project) -> int:
    with project.unit_of_work() as session:
        return get_or_create_category(session, CATEGORY)[0].id


def nothing_found_of(project: Project, model_id: str, checkpoint: str) -> NothingFound:
    return NothingFound(project.folder / "cache" / "attention" / "nothing-found.json", model_id, checkpoint)


def pages_to_discover(project: Project, pages: list[ImageRow], model_id: str, nothing: NothingFound) -> list[ImageRow]:
    """The pages that hold no proposal of ``model_id`` and were not found empty before."""
    holding = categories_found(project, [row.id for row in pages], model_id)
    return [row for row in pages if not (nothing.levels(row) or row.id in holding)]


def propose_regions(project: Project, row: ImageRow, attention: AttentionMap, options: DiscoverOptions,
                    category_id: int, model_id: str, checkpoint: str, run_id: int, creator: str,
                    report: DiscoverReport, nothing: NothingFound, refine: Segmenter | None = None,
                    cancel: CancelToken | None = None) -> list[Region]:
    """The regions holding most of a page's attention, proposed (or the page remembered as empty)."""
    regions = regions_of(attention, options.head, options.share, options.min_patches)
    geometries = [_shape(region, row, refine, cancel) for region in regions]
    if regions:
        create_annotations(project, image_id=row.id, category_id=category_id, geometries=geometries,
                           creator=creator, status=AnnotationStatus.PROPOSED,
                           provenances=[Provenance(SourceKind.MODEL, model_id, checkpoint[:12],
                                                   f"attention {options.head}, {options.share:.0%} of mass",
                                                   round(region.score, 4), run_id) for region in regions])
    else:
        nothing.remember(row, {"regions"})
    report.pages += 1
    report.proposed += len(regions)
    return regions


def _decode(row: ImageRow) -> Image.Image:
    return load_page_isolated(Path(row.path), row.page_index, image_format=row.format).convert("RGB")


def _shape(region: Region, row: ImageRow, refine: Segmenter | None, cancel: CancelToken | None) -> Geometry:
    refined = None
    if refine is not None:
        embedding = refine.embedding(PageRef.of(row), cancel)  # cached after the page's first region
        refined = mask_in_box(refine, embedding, region.box)
    return refined or region.mask.geometry(row.width, row.height)
