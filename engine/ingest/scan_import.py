"""Import scans into a project: sniff, hash, probe, thumbnail, then record.

The calling thread sniffs and hashes each file (hashing releases the GIL) and
weeds out duplicates; pixel work (probing and decoding every page for its
thumbnail) runs in worker processes, because some decoders hold the GIL and
would freeze a GUI thread. Each file is then recorded in one short
transaction. A file that fails anywhere is reported with its reason and
leaves the project untouched; the others go on.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISFIFO, S_ISREG

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.cores import usable_cores
from engine.fileio import sha256_file
from engine.imaging.isolated import reset_shared_decode_pool, shared_decode_pool
from engine.imaging.probe import FileInfo
from engine.imaging.sniff import IMAGE_SUFFIXES, describe_content, read_head, sniff_format
from engine.ingest.examine import examine_image
from engine.ingest.report import FileResult, ImportReport, Outcome
from engine.ingest.walk import Candidate, collect
from engine.jobs import CancelToken, ProgressCallback, report
from engine.project import Project
from engine.store.schema import Image

@dataclass(frozen=True, slots=True)
class _Readable:
    """A file that sniffed as an image, hashed, and not yet in the project."""

    path: Path
    image_format: str
    sha256: str
    file_size: int
    file_mtime: float


@dataclass(slots=True)
class _Pending:
    candidate: Candidate
    early: FileResult | None = None  # decided without decoding
    readable: _Readable | None = None
    examined: Future[FileInfo | FileResult] | None = None


def import_scans(
    project: Project,
    paths: Iterable[Path],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    pool: Executor | None = None,
    window: int | None = None,
) -> ImportReport:
    """Import every image found in ``paths`` (files or folders, recursively)."""
    project.require_writable()  # before any file is looked at
    project.check_intact()
    candidates, problems = collect(list(paths))
    outcome = ImportReport(results=list(problems))
    total = len(candidates)
    report(progress, 0, total, "Looking at files…")
    if not candidates:
        return outcome
    pool = pool or shared_decode_pool()
    hashes_before = _hashes_in(project)
    seen_hashes = set(hashes_before)  # grows as files of this run are accepted for decoding
    # A bounded window of files in flight keeps memory flat and cancel prompt.
    window = window or 2 * max(2, usable_cores())
    pending: deque[_Pending] = deque()
    queue = iter(candidates)
    done = 0
    while True:
        while len(pending) < window and not (cancel and cancel.cancelled):
            candidate = next(queue, None)
            if candidate is None:
                break
            pending.append(_start(candidate, seen_hashes, pool, project.thumbnail_dir))
        if not pending:
            break
        result = _finish(project, pending.popleft(), hashes_before, cancel)
        outcome.results.append(result)
        done += 1
        report(progress, done, total, f"{result.outcome.value}: {result.path.name}")
        if cancel and cancel.cancelled:
            for waiting in pending:
                if waiting.examined is not None:
                    waiting.examined.cancel()
            outcome.cancelled = done < total
            break
    return outcome


def _hashes_in(project: Project) -> frozenset[str]:
    with project.unit_of_work() as session:
        return frozenset(session.scalars(select(Image.sha256).distinct()))


def _start(candidate: Candidate, seen_hashes: set[str], pool: Executor, thumbnail_dir: Path) -> _Pending:
    path = candidate.path
    try:
        stat = path.stat()
        if not S_ISREG(stat.st_mode) and not S_ISDIR(stat.st_mode):
            # Reading a pipe would wait for a writer for ever; a device may never end.
            kind = "a pipe" if S_ISFIFO(stat.st_mode) else "a device or socket"
            return _Pending(candidate, FileResult(path, Outcome.FAILED, f"this is {kind}, not a file"))
        if stat.st_size == 0:
            return _Pending(candidate, FileResult(path, Outcome.FAILED, "the file is empty (0 bytes)"))
        head = read_head(path)
        image_format = sniff_format(head)
        if image_format is None:
            return _Pending(candidate, _not_an_image(candidate, head))
        sha256 = sha256_file(path)
    except PermissionError:
        return _Pending(candidate, FileResult(path, Outcome.FAILED,
                                              "permission denied: the file cannot be read"))
    except IsADirectoryError:
        return _Pending(candidate, FileResult(path, Outcome.FAILED, "this is a folder, not a file"))
    except OSError as error:
        return _Pending(candidate, FileResult(path, Outcome.FAILED,
                                              f"cannot read the file ({error.strerror or error})"))
    except (UnicodeError, ValueError) as error:  # a name this system cannot pass to its own file calls
        return _Pending(candidate, FileResult(path, Outcome.FAILED, f"the file name cannot be used ({error})"))
    readable = _Readable(path, image_format, sha256, stat.st_size, stat.st_mtime)
    if sha256 in seen_hashes:
        return _Pending(candidate, readable=readable)  # recorded as a duplicate, by name
    seen_hashes.add(sha256)
    return _Pending(candidate, readable=readable,
                    examined=pool.submit(examine_image, path, image_format, sha256, thumbnail_dir))


_LAYOUT_ROOTS = ((re.compile(rb"<(?:[\w.-]+:)?PcGts\b"), "PAGE XML"), (re.compile(rb"<(?:[\w.-]+:)?alto\b"), "ALTO"))


def _layout_kind(path: Path) -> str:
    """"PAGE XML" or "ALTO" when the file's root element says so (within its first 4 KB), else ""."""
    try:
        with path.open("rb") as stream:
            start = stream.read(4096)
    except OSError:
        return ""
    return next((kind for pattern, kind in _LAYOUT_ROOTS if pattern.search(start)), "")


def _not_an_image(candidate: Candidate, head: bytes) -> FileResult:
    what = describe_content(head)
    suffix = candidate.path.suffix.lower()
    kind = _layout_kind(candidate.path) if head.lstrip().startswith(b"<") else ""
    if kind:
        command = "import-page" if kind == "PAGE XML" else "import-alto"
        return FileResult(candidate.path, Outcome.FAILED if candidate.named else Outcome.IGNORED,
                          f"a {kind} layout file, not a scan: Import PAGE XML or ALTO… (marginalia {command}) puts "
                          "it on the page it describes", layout=kind)
    if suffix in IMAGE_SUFFIXES:
        return FileResult(candidate.path, Outcome.FAILED,
                          f"not an image although its name ends in {suffix}: {what}")
    if candidate.named:
        return FileResult(candidate.path, Outcome.FAILED, f"not a supported image: {what}")
    return FileResult(candidate.path, Outcome.IGNORED, f"not an image: {what}")


def _finish(project: Project, pending: _Pending, hashes_before: frozenset[str],
            cancel: CancelToken | None) -> FileResult:
    if pending.early is not None:
        return pending.early
    readable = pending.readable
    assert readable is not None
    duplicate = _duplicate_of(project, readable, hashes_before)
    if duplicate is not None:
        if pending.examined is not None:
            pending.examined.cancel()
        return duplicate
    assert pending.examined is not None
    try:
        examined = pending.examined.result()
    except BrokenProcessPool:
        reset_shared_decode_pool()
        return FileResult(readable.path, Outcome.FAILED,
                          "the decoder stopped unexpectedly (out of memory?); import this file again")
    if isinstance(examined, FileResult):
        return examined
    return _record(project, readable, examined, cancel)


def _duplicate_of(project: Project, readable: _Readable, hashes_before: frozenset[str]) -> FileResult | None:
    with project.unit_of_work() as session:
        existing = session.scalars(select(Image).where(Image.sha256 == readable.sha256)).first()
        if existing is None:
            return None
        when = ("already in the project" if readable.sha256 in hashes_before
                else "imported earlier in this run")
        return FileResult(readable.path, Outcome.DUPLICATE, f"same content as {existing.path}, {when}",
                          readable.image_format)


def _record(project: Project, readable: _Readable, info: FileInfo, cancel: CancelToken | None) -> FileResult:
    images = [
        Image(
            path=str(readable.path),
            sha256=readable.sha256,
            page_index=page.page_index,
            page_count=len(info.pages),
            width=page.width,
            height=page.height,
            format=info.format,
            mode=page.mode,
            orientation=page.orientation,
            file_size=readable.file_size,
            file_mtime=readable.file_mtime,
        )
        for page in info.pages
    ]
    try:
        with project.writing(cancel) as session:
            session.add_all(images)
    except IntegrityError:
        return FileResult(readable.path, Outcome.DUPLICATE,
                          "the same content was added to the project meanwhile", info.format)
    return FileResult(
        readable.path,
        Outcome.IMPORTED,
        reason=info.note,
        image_format=info.format,
        image_ids=tuple(image.id for image in images),
        page_sizes=tuple((page.width, page.height) for page in info.pages),
    )
