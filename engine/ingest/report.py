"""What an import did, file by file."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass(slots=True)
class ImportReport:
    results: list[FileResult] = field(default_factory=list)
    cancelled: bool = False

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
