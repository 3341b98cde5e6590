"""What an import did, file by file."""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass, field
from pathlib import Path

from engine.fileio import write_atomically
from engine.paths import displayable


class Outcome(enum.StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class FileResult:
    """The fate of one file. ``reason`` explains anything but a plain import."""

    path: Path
    outcome: Outcome
    reason: str = ""
    image_format: str = ""
    image_ids: tuple[int, ...] = ()
    page_sizes: tuple[tuple[int, int], ...] = ()
    layout: str = ""  # "PAGE XML" or "ALTO" for a layout file met among the scans (it goes on its page instead)

    def details(self) -> str:
        """One line: the format and page sizes of an imported file (and any note), else the reason."""
        if self.outcome is not Outcome.IMPORTED:
            return self.reason
        sizes = ", ".join(f"{width}×{height}" for width, height in self.page_sizes[:3])
        more = f" (+{len(self.page_sizes) - 3} pages)" if len(self.page_sizes) > 3 else ""
        note = f"; {self.reason}" if self.reason else ""
        return f"{self.image_format} {sizes}{more}{note}"


@dataclass(slots=True)
class ImportReport:
    results: list[FileResult] = field(default_factory=list)
    cancelled: bool = False

    def layout_files(self) -> list[Path]:
        """PAGE XML and ALTO files met among the scans: the pages they describe can take them."""
        return [result.path for result in self.results if result.layout]

    def of(self, outcome: Outcome) -> list[FileResult]:
        return [result for result in self.results if result.outcome is outcome]

    @property
    def images_added(self) -> int:
        return sum(len(result.image_ids) for result in self.of(Outcome.IMPORTED))

    def summary(self) -> str:
        counts = {outcome: len(self.of(outcome)) for outcome in Outcome}
        text = (
            f"{counts[Outcome.IMPORTED]} file(s) imported ({self.images_added} page(s)), "
            f"{counts[Outcome.DUPLICATE]} duplicate(s), {counts[Outcome.FAILED]} failed, "
            f"{counts[Outcome.IGNORED]} ignored"
        )
        return text + (" — cancelled before the end" if self.cancelled else "")

    def rows(self) -> list[tuple[str, str, str]]:
        """``(outcome, file, details)`` for every file, problems first, as people read a report."""
        order = {Outcome.FAILED: 0, Outcome.DUPLICATE: 1, Outcome.IGNORED: 2, Outcome.IMPORTED: 3}
        return [(result.outcome.value, displayable(result.path), displayable(result.details()))
                for result in sorted(self.results, key=lambda result: order[result.outcome])]

    def as_text(self) -> str:
        """Tab-separated, one line per file: pastes into a spreadsheet or an e-mail."""
        return "\n".join("\t".join(row) for row in [("outcome", "file", "details"), *self.rows()])

    def write_csv(self, path: Path) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["outcome", "file", "details"])
        writer.writerows(self.rows())
        write_atomically(Path(path), buffer.getvalue().encode("utf-8-sig"))  # the BOM: Excel reads UTF-8 then

