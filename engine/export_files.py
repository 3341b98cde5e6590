"""What an export may write: new files, and files an earlier export wrote that nobody has changed since.

An export never replaces a file it did not write — a scan, the project's database or caches, a curator's
ground-truth ``.page.xml``, a COCO file from another tool. Every folder an export writes into keeps a small
manifest (``.marginalia-export.json``) of the files Marginalia put there with their sha256; with
``overwrite`` such a file may be replaced, but only while its content is still what the export wrote.
Every target is checked before anything is written, so a refused export leaves the folder as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable
from pathlib import Path

from engine.errors import MarginaliaError
from engine.fileio import sha256_file, write_atomically
from engine.paths import DB_FILENAME, TEAM_FILENAME, displayable
from engine.project import Project

MANIFEST_NAME = ".marginalia-export.json"
_PROBLEMS_SHOWN = 4


class ExportConflictError(MarginaliaError):
    """A file the export would write is in the way; nothing was written."""


def portable_name(name: str) -> str:
    """A file name any JSON or XML can hold: bytes that are not UTF-8 (surrogate escapes) become ``%XX``."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return _percent_escaped(name.encode("utf-8", "surrogateescape"))


def _percent_escaped(raw: bytes) -> str:
    text, start = [], 0
    while start < len(raw):
        try:
            text.append(raw[start:].decode("utf-8"))
            break
        except UnicodeDecodeError as error:
            text.append(raw[start:start + error.start].decode("utf-8"))
            text.append("".join(f"%{byte:02X}" for byte in raw[start + error.start:start + error.end]))
            start += error.end
    return "".join(text)


class ExportFiles:
    """The files one export writes under ``folder`` (its own subfolders included)."""

    def __init__(self, project: Project, folder: Path, *, overwrite: bool = False) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.overwrite = overwrite
        self._protected = _project_files(project)
        self._protected_folders = [_real(Path(os.path.abspath(project.folder)) / "cache")]
        self._earlier = _read_manifest(self.folder / MANIFEST_NAME)
        self._written: dict[str, str] = {}

    def check(self, targets: Iterable[Path]) -> None:
        """Refuse, before anything is written, when any target is not the export's to write."""
        problems = [problem for target in targets if (problem := self._problem(Path(target)))]
        foreign = [text for text, earlier in problems if not earlier]
        if foreign:
            raise ExportConflictError(f"Nothing was exported: {_listed(foreign)}. An export never replaces a file it "
                                      "did not write: choose another folder or file name.")
        if problems:
            raise ExportConflictError(
                f"Nothing was exported: {len(problems)} file(s) there are from an earlier export "
                f"({_listed([text for text, _ in problems])}); export with --overwrite to replace them.")

    def _problem(self, target: Path) -> tuple[str, bool] | None:
        """Why ``target`` may not be written, and whether only because it is an earlier export's."""
        target = Path(os.path.abspath(target))
        name = displayable(target)
        real = _real(target)
        if target.name == MANIFEST_NAME:
            return f"{name} is the list of what earlier exports wrote", False
        if real in self._protected or any(real.startswith(folder + os.sep) for folder in self._protected_folders):
            return f"{name} is one of the project's own files (a scan, its database or its caches)", False
        try:
            found = os.lstat(target)
        except FileNotFoundError:
            return None
        except OSError as error:
            return f"{name} cannot be examined ({error.strerror or error})", False
        if not stat.S_ISREG(found.st_mode):
            return f"{name} already exists and is not a plain file", False
        earlier = self._earlier.get(self._key(target))
        if earlier is None or sha256_file(target) != earlier:
            return f"{name} already exists and was not written by a Marginalia export (or was changed since)", False
        return None if self.overwrite else (name, True)

    def _key(self, target: Path) -> str:
        return Path(os.path.relpath(os.path.abspath(target), self.folder)).as_posix()

    def write(self, target: Path, data: bytes, *, durable: bool = True) -> None:
        write_atomically(target, data, durable=durable)
        self._written[self._key(target)] = _sha256_bytes(data)

    def place_copy(self, source: Path, target: Path, source_sha256: str, *, link: bool = False) -> None:
        """``source`` at ``target``, copied (or hard-linked): a file already there with the same content
        (checked in :meth:`check` as the export's own) is kept."""
        key = self._key(target)
        if key in self._earlier and self._earlier[key] == source_sha256 and target.is_file():
            self._written[key] = source_sha256
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")  # a name no one else has
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
        self._written[key] = source_sha256

    def commit(self) -> None:
        """Record what this export wrote (with what earlier ones wrote that is still there)."""
        kept = {key: digest for key, digest in self._earlier.items() if (self.folder / key).is_file()}
        entries = {**kept, **self._written}
        text = json.dumps({"written_by": "Marginalia", "files": dict(sorted(entries.items()))}, indent=1)
        write_atomically(self.folder / MANIFEST_NAME, text.encode("utf-8"))


def _listed(problems: list[str]) -> str:
    more = f"; and {len(problems) - _PROBLEMS_SHOWN} more" if len(problems) > _PROBLEMS_SHOWN else ""
    return "; ".join(problems[:_PROBLEMS_SHOWN]) + more


def _real(path: object) -> str:
    """A path as the file system resolves it, compared as the file system compares (case-blind on Windows)."""
    return os.path.normcase(os.path.realpath(path))  # type: ignore[arg-type]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                return {}
            content = json.loads(stream.read(64 * 1024 * 1024))
        files = content["files"]
        return {str(key): str(value) for key, value in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none, or unreadable: then no file there counts as the export's own


def _project_files(project: Project) -> set[str]:
    from sqlalchemy import select

    from engine.store.schema import Image

    folder = Path(os.path.abspath(project.folder))
    protected: set[str] = set()
    try:
        protected |= {_real(entry) for entry in folder.iterdir() if entry.name.startswith(DB_FILENAME)}
    except OSError:
        pass
    protected.add(_real(folder / DB_FILENAME))
    protected.add(_real(folder / TEAM_FILENAME))
    for suffix in ("-wal", "-shm", "-journal"):
        protected.add(_real(folder / f"{DB_FILENAME}{suffix}"))
    with project.unit_of_work() as session:
        for path in session.scalars(select(Image.path)):
            protected |= {_real(path), _real(project.roots.resolve(path))}
    return protected
