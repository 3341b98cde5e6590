"""Encode many pages ahead of time (a whole project, or the next pages in the gallery), resumable.

Pages whose embedding is cached are skipped, so a cancelled or crashed run
goes on where it stopped. The next batch is decoded while the model encodes
the current one. A page that cannot be read is reported and skipped.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from engine.errors import MarginaliaError
from engine.imaging.probe import UnreadableImage
from engine.jobs import CancelToken, ProgressCallback, describe_duration, report
from engine.models.runs import recent_timings, recorded_run
from engine.models.store import ModelStore
from engine.project import Project
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.segmenter import PageRef, Segmenter


@dataclass
class PrecomputeResult:
    encoded: int = 0
    already_cached: int = 0
    failed: list[tuple[PageRef, str]] = field(default_factory=list)


def estimate_seconds_per_page(project: Project, segmenter: Segmenter, device: str) -> float | None:
    """From this session's encodes, else from earlier runs recorded in the project."""
    measured = segmenter.seconds_per_page()
    if measured is not None:
        return measured
    earlier = recent_timings(project, segmenter.model_id, device, "seconds_per_page")
    return sorted(earlier)[len(earlier) // 2] if earlier else None


def _decode(segmenter: Segmenter, pages: list[PageRef]) -> list[np.ndarray | Exception]:
    decoded: list[np.ndarray | Exception] = []
    for page in pages:
        try:
            decoded.append(segmenter.frame_pixels(page))
        except (UnreadableImage, OSError, MarginaliaError) as error:
            decoded.append(error)
    return decoded


def precompute_embeddings(project: Project, segmenter: Segmenter, pages: list[PageRef], *, batch_size: int = 1,
                          progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None) -> PrecomputeResult:
    result = PrecomputeResult()
    todo = [page for page in pages if not segmenter.has_embedding(page)]
    result.already_cached = len(pages) - len(todo)
    if not todo:
        report(progress, len(pages), len(pages), "Every page is ready for SAM")
        return result
    device = segmenter.service.device_of(segmenter.model_id)
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    with recorded_run(project, segmenter.model_id, device=device,
                      parameters={"task": "encode", "pages": len(todo), "batch_size": batch_size}) as run, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam-prefetch") as reader:
        upcoming: Future[list[np.ndarray | Exception]] = reader.submit(_decode, segmenter, batches[0])
        for number, batch in enumerate(batches):
            decoded = upcoming.result()
            if number + 1 < len(batches):
                upcoming = reader.submit(_decode, segmenter, batches[number + 1])
            done = result.already_cached + result.encoded + len(result.failed)
            estimate = estimate_seconds_per_page(project, segmenter, device)
            remaining = len(todo) - result.encoded - len(result.failed)
            left = (f", about {describe_duration(estimate * remaining)} left" if estimate
                    else " (the first page on a CPU can take a minute; it is timed for the next ones)"
                    if device == "cpu" else " (timing the first page)")
            report(progress, done, len(pages), f"Encoding page {done + 1} of {len(pages)} on {device}{left}",
                   pages_read=result.encoded)
            if cancel is not None:
                cancel.raise_if_cancelled()  # right before the slow part
            readable = [(page, image) for page, image in zip(batch, decoded, strict=True)
                        if not isinstance(image, Exception)]
            result.failed += [(page, str(image)) for page, image in zip(batch, decoded, strict=True)
                              if isinstance(image, Exception)]
            if readable:
                segmenter.encode_images([page for page, _ in readable], [image for _, image in readable],
                                        batch_size=batch_size, cancel=cancel)
                result.encoded += len(readable)
                run.timings["seconds_per_page"] = round(segmenter.seconds_per_page() or 0.0, 3)
        run.timings["pages"] = result.encoded
    report(progress, len(pages), len(pages), f"{result.encoded} pages encoded, {result.already_cached} were ready"
           + (f", {len(result.failed)} could not be read" if result.failed else ""), pages_read=result.encoded)
    return result


def prune_stale_embeddings(project: Project, cache: EmbeddingCache, store: ModelStore) -> int:
    """Remove cached embeddings of pages no longer in the project or of checkpoints no longer installed."""
    from engine.inventory import list_images

    pages = {f"{row.sha256}-p{row.page_index}" for row in list_images(project)}
    models = {f"{installed.id}-{str(entry['sha256'])[:16]}.safetensors"
              for installed in store.installed() for entry in installed.files.values()}

    def keep(name: str) -> bool:  # <sha256>-p<page>-<model id>-<checkpoint>[-<precision>].safetensors
        parts = name.split("-", 2)
        if len(parts) != 3:
            return False
        model = parts[2]
        for precision in ("-bf16", "-fp16"):
            model = model.replace(f"{precision}.safetensors", ".safetensors")
        return f"{parts[0]}-{parts[1]}" in pages and model in models

    return cache.prune(keep)
