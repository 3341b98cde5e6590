"""Import scans into a project: sniff, probe, hash, thumbnail, then record.

Files are examined on a small thread pool (hashing and decoding release the
GIL) while the calling thread records them in the database, one short
transaction per file. A file that fails anywhere is reported with its reason
and leaves the project untouched; the others go on.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.imaging.decode import load_page
from engine.imaging.probe import FileInfo, UnreadableImage, probe
from engine.imaging.sniff import IMAGE_SUFFIXES, describe_content, read_head, sniff_format
from engine.fileio import write_atomically
from engine.imaging.thumbnails import THUMBNAIL_SIDE, encode_thumbnail, thumbnail_path
from engine.ingest.report import FileResult, ImportReport, Outcome
from engine.ingest.walk import Candidate, collect
from engine.jobs import CancelToken, ProgressCallback, report
from engine.project import Project
from engine.store.schema import Image

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class _Examined:
    """A readable image file, ready to be recorded."""

    path: Path
    sha256: str
    info: FileInfo
    file_size: int
    file_mtime: float


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def import_scans(
    project: Project,
    paths: Iterable[Path],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import every image found in ``paths`` (files or folders, recursively)."""
    candidates, problems = collect(list(paths))
    outcome = ImportReport(results=list(problems))
    # Read by the examining threads, only ever added to by this one.
    known_hashes: set[str] = set(_hashes_in(project))
    hashes_before = frozenset(known_hashes)
    total = len(candidates)
    report(progress, 0, total, "Looking at files…")
    worker_count = workers or min(4, os.cpu_count() or 1)
    # A bounded window of pending files keeps memory flat and cancel prompt.
    window = max(2, worker_count * 2)
    pending: deque[tuple[Candidate, Future[_Examined | FileResult]]] = deque()
    queue = iter(candidates)
    with ThreadPoolExecutor(max_workers=worker_count, thread_name_prefix="import") as pool:
        done = 0
        while True:
            while len(pending) < window and not (cancel and cancel.cancelled):
                candidate = next(queue, None)
                if candidate is None:
                    break
                future = pool.submit(_examine, candidate, known_hashes, project.thumbnail_dir)
                pending.append((candidate, future))
            if not pending:
                break
            candidate, future = pending.popleft()
            examined = future.result()
            result = _record(project, examined, hashes_before)
            if isinstance(examined, _Examined) and result.outcome is Outcome.IMPORTED:
                known_hashes.add(examined.sha256)
            outcome.results.append(result)
            done += 1
            report(progress, done, total, f"{result.outcome.value}: {candidate.path.name}")
            if cancel and cancel.cancelled:
                for _, waiting in pending:
                    waiting.cancel()
                outcome.cancelled = done < total
                break
    return outcome


def _hashes_in(project: Project) -> frozenset[str]:
    with project.unit_of_work() as session:
        return frozenset(session.scalars(select(Image.sha256).distinct()))


def _examine(
    candidate: Candidate, known_hashes: set[str], thumbnail_dir: Path
) -> _Examined | FileResult:
    path = candidate.path
    try:
        stat = path.stat()
        if stat.st_size == 0:
            return FileResult(path, Outcome.FAILED, "the file is empty (0 bytes)")
        head = read_head(path)
        image_format = sniff_format(head)
        if image_format is None:
            return _not_an_image(candidate, head)
        info = probe(path, image_format)
        sha256 = sha256_of(path)
        if sha256 in known_hashes:
            # Recording will find the existing image and report it by name.
            return _Examined(path, sha256, info, stat.st_size, stat.st_mtime)
        for page in info.pages:
            # Decoding every page proves the data is whole; the thumbnail is the by-product.
            reduced = load_page(path, page.page_index, max_side=THUMBNAIL_SIDE,
                                image_format=image_format)
            write_atomically(thumbnail_path(thumbnail_dir, sha256, page.page_index),
                             encode_thumbnail(reduced), durable=False)
        return _Examined(path, sha256, info, stat.st_size, stat.st_mtime)
    except UnreadableImage as error:
        return FileResult(path, Outcome.FAILED, str(error))
    except PermissionError:
        return FileResult(path, Outcome.FAILED, "permission denied: the file cannot be read")
    except IsADirectoryError:
        return FileResult(path, Outcome.FAILED, "this is a folder, not a file")
    except OSError as error:
        return FileResult(path, Outcome.FAILED, f"cannot read the file ({error.strerror or error})")
    except Exception as error:  # noqa: BLE001 - one odd file must not end a batch of thousands
        return FileResult(path, Outcome.FAILED,
                          f"the file could not be read ({type(error).__name__}: {error})")


def _not_an_image(candidate: Candidate, head: bytes) -> FileResult:
    what = describe_content(head)
    suffix = candidate.path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return FileResult(candidate.path, Outcome.FAILED,
                          f"not an image although its name ends in {suffix}: {what}")
    if candidate.named:
        return FileResult(candidate.path, Outcome.FAILED, f"not a supported image: {what}")
    return FileResult(candidate.path, Outcome.IGNORED, f"not an image: {what}")


def _record(
    project: Project, examined: _Examined | FileResult, hashes_before: frozenset[str]
) -> FileResult:
    if isinstance(examined, FileResult):
        return examined
    info = examined.info
    with project.unit_of_work() as session:
        existing = session.scalars(select(Image).where(Image.sha256 == examined.sha256)).first()
        if existing is not None:
            when = ("already in the project" if examined.sha256 in hashes_before
                    else "imported earlier in this run")
            return FileResult(examined.path, Outcome.DUPLICATE,
                              f"same content as {existing.path}, {when}", info.format)
    images = [
        Image(
            path=str(examined.path),
            sha256=examined.sha256,
            page_index=page.page_index,
            page_count=len(info.pages),
            width=page.width,
            height=page.height,
            format=info.format,
            mode=page.mode,
            orientation=page.orientation,
            file_size=examined.file_size,
            file_mtime=examined.file_mtime,
        )
        for page in info.pages
    ]
    try:
        with project.unit_of_work() as session:
            session.add_all(images)
    except IntegrityError:
        return FileResult(examined.path, Outcome.DUPLICATE,
                          "the same content was added to the project meanwhile", info.format)
    return FileResult(
        examined.path,
        Outcome.IMPORTED,
        image_format=info.format,
        image_ids=tuple(image.id for image in images),
        page_sizes=tuple((page.width, page.height) for page in info.pages),
    )
