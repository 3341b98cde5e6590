"""Export with images: the pages beside the COCO file, so the folder is a dataset any tool can load.

Like CVAT's and Label Studio's exports, the pages go into ``images/`` next to the
JSON and ``file_name`` points there. A page that a training pipeline can read as
it is (a single-page JPEG, PNG, TIFF, BMP or WebP with no orientation flag) is
copied, or hard-linked when asked; any other page (one page of a multi-page
TIFF or PDF, a turned photograph, JPEG 2000, HEIC…) is written as a PNG of the
page as displayed, so its pixels and the annotations' coordinates agree
without any flag to interpret.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import MarginaliaError
from engine.export_files import ExportFiles, portable_name
from engine.imaging.decode import load_page
from engine.jobs import CancelToken, ProgressCallback, report
from engine.paths import displayable

IMAGES_FOLDER = "images"
_AS_THEY_ARE = frozenset({"JPEG", "PNG", "TIFF", "BMP", "WEBP"})


@dataclass(frozen=True, slots=True)
class PageSource:
    """Where an exported image entry's pixels come from."""

    page_id: int  # the project's, which tells apart pages whose exported names would be the same
    path: str
    page_index: int
    page_count: int
    format: str
    orientation: int
    sha256: str
    relative: str  # its file name relative to the images root (POSIX)


def image_names(sources: list[PageSource], as_they_are: frozenset[str] = _AS_THEY_ARE) -> list[str]:
    """Each page's file name under ``images/``: its own relative name (a PNG where converted), in UTF-8,
    with ``_id<page>`` added where two pages would otherwise share one (``scan.heic`` and ``scan.png``, two
    names that differ only in case, a name whose bytes are not UTF-8 and one spelt like its escape)."""
    names = [portable_name(_target_name(source, as_they_are)) for source in sources]
    counts = Counter(name.casefold() for name in names)
    taken = set(counts)
    unique = []
    for name, source in zip(names, sources, strict=True):
        if counts[name.casefold()] > 1:
            path, tag = PurePosixPath(name), f"_id{source.page_id}"
            while (name := path.with_name(f"{path.stem}{tag}{path.suffix}").as_posix()).casefold() in taken:
                tag += "x"  # a scan really is named like that: no two pages ever share a file
            taken.add(name.casefold())
        unique.append(name)
    return unique


def place_images(entries: list[dict], sources: list[PageSource], names: list[str], folder: Path,
                 files: ExportFiles, *, link: bool = False, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, as_they_are: frozenset[str] = _AS_THEY_ARE) -> None:
    """Put every page into ``folder`` under its name (:func:`image_names`) and point its entry there."""
    for done, (entry, source, name) in enumerate(zip(entries, sources, names, strict=True), start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, done, len(entries), f"Copying page images… {PurePosixPath(name).name}")
        target = folder / name
        try:
            if _as_it_is(source, as_they_are):
                files.place_copy(Path(source.path), target, source.sha256, link=link)
            else:
                page = load_page(Path(source.path), source.page_index, image_format=source.format)
                buffer = io.BytesIO()
                page.save(buffer, "PNG", optimize=False)
                files.write(target, buffer.getvalue(), durable=False)
        except OSError as error:
            raise MarginaliaError(f"Cannot put {displayable(source.path)} into {displayable(folder)}: "
                                  f"{error.strerror or error}.") from error
        entry["file_name"] = f"{IMAGES_FOLDER}/{name}"


def _as_it_is(source: PageSource, as_they_are: frozenset[str]) -> bool:
    return source.format in as_they_are and source.page_count == 1 and source.orientation == 1


def _target_name(source: PageSource, as_they_are: frozenset[str]) -> str:
    relative = PurePosixPath(source.relative)
    if _as_it_is(source, as_they_are):
        return relative.as_posix()
    suffix = f"_p{source.page_index + 1}" if source.page_count > 1 else ""
    return relative.with_name(f"{relative.stem}{suffix}.png").as_posix()
