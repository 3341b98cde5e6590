"""PAGE XML and ALTO files in and out of a project: which page a file means, and one file per page out.

A layout file names its scan (PAGE ``imageFilename``, ALTO ``fileName``), often by a path from another
machine (``OCR-D-IMG/INPUT_0017.tif``), and is usually named after the scan itself
(``kant_0017.page.xml`` for ``kant_0017.tif``). A file is put on the page whose file name it names, or
else on the page whose name it carries; when several pages fit (the same name in two folders, a TIFF and
a JPEG 2000 of one page, a multi-page file) nothing is imported and the candidates are listed: the
curator says which page (``image_id``). The page's size must then be the file's: see
``engine.layout.store``.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.coco.geometry import GeometryError
from engine.errors import MarginaliaError
from engine.export_files import ExportFiles, portable_name
from engine.fileio import require_plain_file
from engine.inventory import ImageRow, list_images
from engine.layout.alto import read_alto, write_alto
from engine.layout.model import PageLayout
from engine.layout.page_xml import read_page, write_page
from engine.layout.store import LayoutImport, import_layout, layout_of
from engine.layout.xml import MAX_LAYOUT_BYTES
from engine.paths import displayable
from engine.project import Project


@dataclass(frozen=True)
class LayoutFormat:
    name: str  # as the curator reads it, and as the import's source
    read: Callable[[Path], PageLayout]
    write: Callable[[PageLayout, str], bytes]
    suffix: str  # of the files written


FORMATS = {
    "page": LayoutFormat("PAGE XML", read_page, write_page, ".page.xml"),
    "alto": LayoutFormat("ALTO", read_alto, write_alto, ".alto.xml"),
}


class AmbiguousPageError(MarginaliaError):
    """Several pages fit a layout file; the curator names one (``candidates``: their page ids)."""

    def __init__(self, message: str, candidates: list[int]) -> None:
        super().__init__(message)
        self.candidates = candidates


@dataclass
class LayoutFilesReport:
    imported: list[tuple[Path, LayoutImport, list[str]]] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    ambiguous: dict[Path, list[int]] = field(default_factory=dict)  # refused files that a page choice settles

    def summary(self) -> str:
        regions = sum(done.regions for _, done, _ in self.imported)
        lines = sum(done.lines for _, done, _ in self.imported)
        words = sum(done.words for _, done, _ in self.imported)
        refused = f"; {len(self.refused)} file(s) refused" if self.refused else ""
        return (f"Imported {len(self.imported)} file(s): {regions} region(s), {lines} line(s), {words} word(s)"
                f"{refused}")


def format_of(path: Path) -> str:
    """``"page"`` or ``"alto"``, from the file's root element (not its name)."""
    from lxml import etree

    require_plain_file(path, MAX_LAYOUT_BYTES, "a layout file")
    try:
        for _event, element in etree.iterparse(str(path), events=("start",), resolve_entities=False,
                                               no_network=True, load_dtd=False):
            root = etree.QName(element).localname
            break
        else:
            root = ""
    except (OSError, etree.XMLSyntaxError) as error:
        raise MarginaliaError(f"{path.name} cannot be read as XML: {error}") from error
    found = {"PcGts": "page", "alto": "alto"}.get(root)
    if found is None:
        raise MarginaliaError(f"{path.name} is neither PAGE XML nor ALTO (its root element is <{root}>).")
    return found


def import_layout_files(project: Project, files: list[Path], fmt: str, *, image_id: int | None = None,
                        replace: bool = False, creator: str = "") -> LayoutFilesReport:
    """Each file onto its page; a file that cannot be read, or placed for certain, is refused with its reason
    while the others are imported. ``fmt``: "page", "alto", or "any" (each file's own, from its content)."""
    if image_id is not None and len(files) != 1:
        raise MarginaliaError("A page can be named for one file only; import the others without naming it.")
    project.require_writable()
    project.check_intact()
    rows = list_images(project)
    report = LayoutFilesReport()
    for path in files:
        try:
            layout_format = FORMATS[format_of(path) if fmt == "any" else fmt]
            layout = layout_format.read(path)
            row = _chosen(rows, image_id) if image_id is not None else page_for(path, layout, rows)
            done = import_layout(project, row.id, layout, source=layout_format.name, creator=creator,
                                 replace=replace)
        except (MarginaliaError, GeometryError) as error:  # this file only: the others are still read
            report.refused.append((path, str(error)))
            if isinstance(error, AmbiguousPageError):
                report.ambiguous[path] = error.candidates
            continue
        report.imported.append((path, done, layout.notes + done.notes))
    return report


def _chosen(rows: list[ImageRow], image_id: int) -> ImageRow:
    for row in rows:
        if row.id == image_id:
            return row
    raise MarginaliaError(f"The project has no page {image_id} (marginalia list shows the pages' numbers).")


def page_for(path: Path, layout: PageLayout, rows: list[ImageRow]) -> ImageRow:
    """The page a layout file means: the one whose file name the layout names, else the one whose file
    name (without extension) the layout file's name starts with; refused when none or several fit."""
    named = _fold(layout.image_name.replace("\\", "/").rsplit("/", 1)[-1]) if layout.image_name else ""
    by_name = [row for row in rows if named and _fold(os.path.basename(row.path)) == named]
    stem = _fold(_layout_stem(path.name))
    by_stem = [row for row in rows if _fold(Path(row.path).stem) == stem]
    candidates = by_name or by_stem
    if not candidates:
        said = f" or to “{layout.image_name}”" if layout.image_name else ""
        raise MarginaliaError(f"No page of the project belongs to {path.name} (no scan is named like it{said}); "
                              "name the page to put it on.")
    if len(candidates) > 1:
        listed = ", ".join(f"{row.id}: {displayable(row.path)}"
                           + (f" page {row.page_number}" if row.page_count > 1 else "") for row in candidates[:6])
        raise AmbiguousPageError(f"{path.name} could belong to {len(candidates)} pages ({listed}); nothing was "
                                 "imported. Name the page to put it on.", [row.id for row in candidates])
    return candidates[0]


def _layout_stem(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".xml") else name
    for suffix in (".page", ".alto", ".pagexml", ".ocr"):
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


SUMMARY_NOTES = 3  # what the format could not hold, said in the summary itself (the CLI lists every note)


@dataclass
class LayoutExport:
    folder: Path
    files: list[Path] = field(default_factory=list)
    regions: int = 0
    lines: int = 0
    words: int = 0
    notes: list[str] = field(default_factory=list)
    proposals_left_out: int = 0
    left_out: list[str] = field(default_factory=list)  # pages not written, each with its reason

    def summary(self) -> str:
        left = (f"; {self.proposals_left_out} proposal(s) not yet reviewed were left out (accept them first, or "
                "export with proposals)") if self.proposals_left_out else ""
        pages = f"; {len(self.left_out)} page(s) not written: {self.left_out[0]}" if self.left_out else ""
        shown = self.notes[:SUMMARY_NOTES]
        more = f" (and {len(self.notes) - len(shown)} more note(s))" if len(self.notes) > len(shown) else ""
        notes = "".join(f"; {displayable(note)}" for note in shown) + more
        return (f"Wrote {len(self.files)} file(s) to {displayable(str(self.folder))}: {self.regions} region(s), "
                f"{self.lines} line(s), {self.words} word(s){left}{pages}{notes}")


def export_layouts(project: Project, folder: Path, fmt: str, *, include_proposals: bool = False,
                   image_ids: list[int] | None = None, overwrite: bool = False) -> LayoutExport:
    """One file per page into ``folder``, named after the page's scan (``name.page.xml``; a page of a
    multi-page file ``name_p0002.page.xml``; names two scans share get the page's number too). The file
    names its scan by the path from ``folder``. Only new files are written, or with ``overwrite`` files an
    earlier export wrote (:mod:`engine.export_files`); a page whose scan's name is not UTF-8 is left out
    with the reason (the file could not name its scan)."""
    layout_format = FORMATS[fmt]
    folder = Path(os.path.abspath(folder))
    project.check_intact()
    rows = list_images(project, image_ids)
    report = LayoutExport(folder)
    writable = []
    for row in rows:
        if portable_name(row.path) != row.path:
            report.left_out.append(f"{displayable(row.path)}: its file name is not UTF-8, which {layout_format.name} "
                                   "cannot hold; rename the scan and relink it")
        else:
            writable.append(row)
    names = {row.id: _file_stem(row) for row in writable}
    shared = {name for name, count in Counter(n.casefold() for n in names.values()).items() if count > 1}
    targets = {row.id: folder / (names[row.id] + (f"_id{row.id}" if names[row.id].casefold() in shared else "")
                                 + layout_format.suffix) for row in writable}
    files = ExportFiles(project, folder, overwrite=overwrite)
    files.check(targets.values())
    folder.mkdir(parents=True, exist_ok=True)
    for row in writable:
        layout = layout_of(project, row.id, include_proposals=include_proposals)
        target = targets[row.id]
        files.write(target, layout_format.write(layout, _relative(Path(row.path), folder)))
        regions, lines, words = layout.counts()
        report.files.append(target)
        report.regions, report.lines, report.words = report.regions + regions, report.lines + lines, \
            report.words + words
        report.notes += [f"{target.name}: {note}" for note in layout.notes]
        report.proposals_left_out += layout.proposals_left_out
    if writable:
        files.commit()
    return report


def _file_stem(row: ImageRow) -> str:
    stem = Path(row.path).stem
    return f"{stem}_p{row.page_number:04d}" if row.page_count > 1 else stem


def _relative(image: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(image, folder)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return image.as_posix()
