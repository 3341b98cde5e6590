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
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from engine.errors import MarginaliaError
from engine.fileio import sha256_file, write_atomically
from engine.imaging.decode import load_page
from engine.jobs import CancelToken, ProgressCallback, report
from engine.paths import displayable

IMAGES_FOLDER = "images"
_AS_THEY_ARE = frozenset({"JPEG", "PNG", "TIFF", "BMP", "WEBP"})


@dataclass(frozen=True, slots=True)
class PageSource:
    """Where an exported image entry's pixels come from."""

    path: str
    page_index: int
    page_count: int
    format: str
    orientation: int
    sha256: str
    relative: str  # its file name relative to the images root (POSIX)


def place_images(entries: list[dict], sources: list[PageSource], folder: Path, *, link: bool = False,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> None:
    """Put every page into ``folder`` and point its entry's ``file_name`` at it (``images/…``)."""
    for done, (entry, source) in enumerate(zip(entries, sources, strict=True), start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, done, len(entries), f"Copying page images… {displayable(PurePosixPath(source.relative).name)}")
        name = _target_name(source)
        target = folder / name
        try:
            if _as_it_is(source):
                _copy(Path(source.path), target, source.sha256, link)
            else:
                page = load_page(Path(source.path), source.page_index, image_format=source.format)
                _write_png(page, target)
        except OSError as error:
            raise MarginaliaError(f"Cannot put {displayable(source.path)} into {displayable(folder)}: "
                                  f"{error.strerror or error}.") from error
        entry["file_name"] = displayable(f"{IMAGES_FOLDER}/{name}")


def _as_it_is(source: PageSource) -> bool:
    return source.format in _AS_THEY_ARE and source.page_count == 1 and source.orientation == 1


def _target_name(source: PageSource) -> str:
    relative = PurePosixPath(source.relative)
    if _as_it_is(source):
        return relative.as_posix()
    suffix = f"_p{source.page_index + 1}" if source.page_count > 1 else ""
    return relative.with_name(f"{relative.stem}{suffix}.png").as_posix()


def _copy(source: Path, target: Path, sha256: str, link: bool) -> None:
    if target.is_file() and target.stat().st_size == source.stat().st_size and sha256_file(target) == sha256:
        return  # exported before: the same file is already there
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if link:
            try:
                os.link(source, partial)
            except OSError:  # another disc, or a file system without hard links: copy instead
                shutil.copyfile(source, partial)
        else:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _write_png(page: Image.Image, target: Path) -> None:
    buffer = io.BytesIO()
    page.save(buffer, "PNG", optimize=False)
    write_atomically(target, buffer.getvalue(), durable=False)
