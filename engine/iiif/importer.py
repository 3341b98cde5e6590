"""A IIIF manifest into the project: each canvas a page, with its labels and metadata, and the canvas it came
from remembered (so shapes can go back in canvas coordinates).

Each canvas's image is fetched at full resolution (or ``size`` pixels on its longer side) into a folder of
the project's, one file per canvas (the server's own file where it gave the page whole, else PNG), written
whole or not at all; a page already there is not fetched again,
so a stopped import continues where it stopped. Then the files are imported as scans are.
"""

from __future__ import annotations

import os
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from engine.errors import JobCancelled, MarginaliaError
from engine.fileio import read_plain_file
from engine.iiif.fetch import FetchError, fetch
from engine.iiif.image_api import ImageServiceError, TileCache
from engine.iiif.manifest import (
    Canvas,
    Collection,
    Manifest,
    ManifestError,
    read_presentation,
)
from engine.iiif.pages import fetch_page, store_page, stored_page
from engine.imaging.isolated import shared_decode_pool
from engine.ingest.scan_import import import_scans
from engine.jobs import CancelToken, JobProgress, ProgressCallback
from engine.project import Project
from engine.store.schema import IiifCanvas, Image

MAX_MANIFEST_FILE = 64 * 1024 * 1024
PATHS_PER_QUERY = 500  # below every database's limit on bound values
STORING_PAGES = 2  # pages encoded and written while the next is fetched; each holds its pixels in memory


class CollectionGiven(MarginaliaError):
    """The address is a collection: the curator chooses one of its manifests."""

    def __init__(self, collection: Collection) -> None:
        listed = "; ".join(f"{entry.label or entry.id} ({entry.id})" for entry in collection.items[:10])
        more = f" and {len(collection.items) - 10} more" if len(collection.items) > 10 else ""
        super().__init__(f"{collection.label or collection.id} is a IIIF collection of {len(collection.items)} "
                         f"item(s); import one of its manifests: {listed}{more}.")
        self.collection = collection


@dataclass
class IiifImportReport:
    manifest: str = ""
    pages_added: int = 0
    pages_already: int = 0
    requests: int = 0  # to image servers, this run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (canvas label, reason)
    left_out: list[str] = field(default_factory=list)  # canvases the manifest could not give
    cancelled: bool = False
    image_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.manifest}: {self.pages_added} page(s) added, {self.pages_already} already in the project, "
                f"{len(self.failed)} failed, {len(self.left_out)} canvas(es) left out")
        return text + (" — stopped; importing again continues" if self.cancelled else "")


def read_source(source: str, cancel: CancelToken | None = None) -> tuple[Manifest | Collection, str]:
    """The manifest or collection at a web address or in a saved file."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        fetched = fetch(source, cancel=cancel)
        return read_presentation(fetched.data, source), fetched.url
    path = Path(source)
    return read_presentation(read_plain_file(path, MAX_MANIFEST_FILE, "a IIIF manifest"), path.name), source


def import_manifest(project: Project, source: str, *, size: int | None = None,
                    canvases: range | list[int] | None = None,
                    folder: Path | None = None, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> IiifImportReport:
    """The manifest's canvases (``canvases``: 0-based positions) as pages; ``size``: the longer side wanted,
    ``None`` for full resolution."""
    project.require_writable()
    document, _ = read_source(source, cancel)
    if isinstance(document, Collection):
        raise CollectionGiven(document)
    manifest = document
    chosen = [canvas for position, canvas in enumerate(manifest.canvases) if canvases is None or position in canvases]
    report = IiifImportReport(manifest.label or manifest.id, left_out=list(manifest.left_out))
    target = folder or project.folder / "iiif" / _slug(manifest.label or manifest.id)
    target.mkdir(parents=True, exist_ok=True)
    cache = TileCache(project.folder / "iiif" / ".tiles")
    written: list[tuple[Canvas, Path]] = []
    storing: deque[tuple[Canvas, Path | Future[Path]]] = deque()  # in canvas order, stored or being stored

    def counted(_: str) -> None:
        report.requests += 1

    # Pages are stored (encoded, written, thumbnailed) in threads while the next one is fetched: encoding
    # releases the GIL, so the client keeps up with the server instead of waiting on itself.
    with ThreadPoolExecutor(max_workers=STORING_PAGES) as pool:
        pool.submit(shared_decode_pool)  # the scan import's workers start while the first page is fetched
        for number, canvas in enumerate(chosen, start=1):
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            if progress is not None:
                progress(JobProgress(number - 1, len(chosen), f"Fetching {canvas.label} ({number} of {len(chosen)})"))
            stem = target / f"{number:04d}_{_slug(canvas.label)}"
            try:
                stored = stored_page(stem)
                if stored is not None:
                    storing.append((canvas, stored))
                    continue
                page = fetch_page(canvas, size, cache, cancel, counted)
                storing.append((canvas, pool.submit(store_page, page, stem, cache, project.thumbnail_dir)))
                del page  # its pixels belong to the storing thread now
            except JobCancelled:
                report.cancelled = True
                break
            except (FetchError, ImageServiceError, ManifestError) as error:
                report.failed.append((canvas.label, str(error)))
            while len(storing) > STORING_PAGES:
                written.append(_stored(storing.popleft()))
        while storing:  # pages being written when cancelled finish whole
            written.append(_stored(storing.popleft()))
    _add_pages(project, manifest, written, report)
    return report


def _stored(entry: tuple[Canvas, Path | Future[Path]]) -> tuple[Canvas, Path]:
    canvas, page = entry
    return canvas, page.result() if isinstance(page, Future) else page


def _add_pages(project: Project, manifest: Manifest, written: list[tuple[Canvas, Path]],
               report: IiifImportReport) -> None:
    if not written:
        return
    import_scans(project, [path for _, path in written])
    by_path = {os.path.abspath(path): canvas for canvas, path in written}  # as the scan import records paths
    statement = "; ".join(part for part in (manifest.required_statement, manifest.rights) if part)
    with project.unit_of_work() as session:
        placed = set()
        paths = list(by_path)
        images = [image for start in range(0, len(paths), PATHS_PER_QUERY) for image in session.scalars(
            select(Image).where(Image.path.in_(paths[start:start + PATHS_PER_QUERY])))]
        for image in images:
            canvas = by_path[image.path]
            placed.add(canvas.id)
            report.image_ids.append(image.id)
            if session.get(IiifCanvas, image.id) is not None:
                report.pages_already += 1
                continue
            report.pages_added += 1
            image.title = f"{manifest.label}, {canvas.label}" if manifest.label else canvas.label
            image.rights = image.rights or statement
            image.date = image.date or manifest.nav_date[:100] or _metadata_value(manifest, ("date",))[:100]
            image.shelfmark = image.shelfmark or _metadata_value(manifest, ("shelfmark", "call number", "signatur"))
            notes = [f"{label}: {value}" for label, value in (*manifest.metadata, *canvas.metadata)]
            image.notes = image.notes or "\n".join([f"IIIF manifest: {manifest.id}", *notes])
            service = canvas.image.service
            session.add(IiifCanvas(image_id=image.id, manifest_id=manifest.id, canvas_id=canvas.id,
                                   canvas_width=canvas.width, canvas_height=canvas.height,
                                   service_id=service.id if service else "",
                                   service_version=service.version if service else 0))
        for canvas, _ in written:
            if canvas.id not in placed:  # the scan import keeps one page per content: a placeholder image, say
                report.failed.append((canvas.label, "its image is the same as another page's (a placeholder "
                                                    "image, perhaps), which is in the project once"))


def _metadata_value(manifest: Manifest, names: tuple[str, ...]) -> str:
    return next((value for label, value in manifest.metadata if label.casefold() in names), "")


def _slug(text: str) -> str:
    slug = re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("._")[:60]
    return slug or "untitled"
