"""Turn the paths a curator names into the list of files to look at."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.ingest.report import FileResult, Outcome
from engine.paths import OS_LITTER, PROJECT_MARKERS

# Operating-system litter that is never worth a line in a report.
@dataclass(frozen=True, slots=True)
class Candidate:
    """A file to examine. ``named`` is true when the curator named it directly."""

    path: Path
    named: bool


def _absolute(path: Path) -> Path:
    # Normalise ".." but keep symbolic links as the curator named them.
    return Path(os.path.abspath(path))


def _natural_key(path: Path) -> list[object]:
    # page_2 before page_10, as a curator reads them
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def collect(paths: list[Path]) -> tuple[list[Candidate], list[FileResult]]:
    """Expand files and folders (recursively) into candidates, and report paths that fail."""
    candidates: list[Candidate] = []
    problems: list[FileResult] = []
    seen: set[Path] = set()

    def add(path: Path, named: bool) -> None:
        key = _absolute(path)
        if key not in seen:
            seen.add(key)
            candidates.append(Candidate(key, named))

    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_symlink() and not path.exists():
            problems.append(_broken_link(path))
        elif not path.exists():
            problems.append(FileResult(_absolute(path), Outcome.FAILED, "not found"))
        elif path.is_dir():
            found, failed = _walk_folder(path)
            problems.extend(failed)
            for file_path in found:
                add(file_path, named=False)
        else:
            add(path, named=True)
    return candidates, problems


def _walk_folder(folder: Path) -> tuple[list[Path], list[FileResult]]:
    found: list[Path] = []
    failed: list[FileResult] = []

    def on_error(error: OSError) -> None:
        where = _absolute(Path(error.filename) if error.filename else folder)
        failed.append(FileResult(where, Outcome.FAILED, f"cannot read this folder ({error.strerror})"))

    for root, dirs, files in os.walk(folder, onerror=on_error):
        if any(marker in files for marker in PROJECT_MARKERS):
            # A project folder (perhaps the one importing): its caches are not scans.
            failed.append(FileResult(_absolute(Path(root)), Outcome.IGNORED,
                                     "a Marginalia project folder; its contents are not scans"))
            dirs[:] = []
            continue
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            if name.startswith(".") or name.lower() in OS_LITTER:
                continue
            path = Path(root) / name
            if path.is_symlink() and not path.exists():
                failed.append(_broken_link(path))
            else:
                found.append(path)
    found.sort(key=_natural_key)
    return found, failed


def _broken_link(path: Path) -> FileResult:
    target = os.readlink(path)
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return FileResult(_absolute(path), Outcome.FAILED,
                              f"a link that leads back to itself (through {target}), so to no file")
    return FileResult(_absolute(path), Outcome.FAILED, f"broken link: its target {target} does not exist")
