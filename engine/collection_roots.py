"""Where this computer finds the scans: its own collection roots, kept in the project folder (one per computer).

A team's scans live on a shared drive that each computer mounts in its own place (``/mnt/library/scans`` on one,
``S:\\Scans`` or ``/Volumes/Scans`` on others), while the database holds one path per page: the one it was
imported from. ``collection-roots.json`` maps a stored folder to where it is here, and names files found
elsewhere by their content (``relink`` on a team project writes here, not into the shared database, which the
other computers read). Every page read through the ORM comes with its path as found here; the stored path stays
as it is in the database.

    {"roots": [{"stored": "/mnt/library/scans", "here": "/Volumes/Scans"}], "files": {"/old/a.tif": "/new/a.tif"}}
"""

from __future__ import annotations

import functools
import json
import ntpath
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.errors import ProjectError
from engine.store.schema import Image

ROOTS_FILENAME = "collection-roots.json"
SESSION_KEY = "collection_roots"


def _split(path: str) -> list[str]:
    """A path's folders and name, whichever system wrote it (a team may mix Windows and POSIX computers)."""
    drive, rest = ntpath.splitdrive(path) if ("\\" in path or ntpath.splitdrive(path)[0]) else ("", path)
    parts = [part for part in rest.replace("\\", "/").split("/") if part]
    return ([drive] if drive else ["/"] if path.startswith("/") else []) + parts


@dataclass
class CollectionRoots:
    roots: list[tuple[str, str]] = field(default_factory=list)  # (stored folder, the same folder here)
    files: dict[str, str] = field(default_factory=dict)  # stored path → path here (found by content)

    def __bool__(self) -> bool:
        return bool(self.roots or self.files)

    def resolve(self, stored: str) -> str:
        """Where the file stored as ``stored`` is on this computer (``stored`` itself where nothing says else)."""
        if stored in self.files:
            return self.files[stored]
        parts = _split(stored)
        for prefix, here in _deepest_first(tuple(self.roots)):
            if tuple(parts[:len(prefix)]) == prefix and len(parts) > len(prefix):
                return os.path.join(here, *parts[len(prefix):])
        return stored

    @classmethod
    def load(cls, folder: Path) -> CollectionRoots:
        path = folder / ROOTS_FILENAME
        if not path.is_file():
            return cls()
        try:
            facts = json.loads(path.read_text(encoding="utf-8"))
            roots = [(str(item["stored"]), str(item["here"])) for item in facts.get("roots", [])]
            files = {str(key): str(value) for key, value in facts.get("files", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProjectError(f"{path} cannot be read ({error}): it should list where this computer finds the "
                               "scans. Fix or remove it; nothing else was changed.") from error
        return cls(roots, files)

    def save(self, folder: Path) -> None:
        path = folder / ROOTS_FILENAME
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps({"roots": [{"stored": s, "here": h} for s, h in self.roots],
                                         "files": self.files}, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        os.replace(temporary, path)

    def add_root(self, stored: str, here: str) -> None:
        self.remove_root(stored)
        self.roots.append((stored, here))

    def remove_root(self, stored: str) -> bool:
        """Forget the root stored as ``stored`` (however its separators are written); whether there was one."""
        kept = [(s, h) for s, h in self.roots if _split(s) != _split(stored)]
        removed = len(kept) != len(self.roots)
        self.roots = kept
        return removed


@functools.lru_cache(maxsize=16)
def _deepest_first(roots: tuple[tuple[str, str], ...]) -> tuple[tuple[tuple[str, ...], str], ...]:
    """The roots' stored folders split into names, deepest first (a page listing resolves thousands of paths)."""
    split = [(tuple(_split(stored)), here) for stored, here in roots]
    return tuple(sorted(split, key=lambda pair: -len(pair[0])))


def root_between(stored: str, found: str) -> tuple[str, str] | None:
    """The folders that a moved file's two paths differ by (their longest common tail of names set aside), e.g.
    ``/mnt/scans/a/b.tif`` and ``/Volumes/Scans/a/b.tif`` → (``/mnt/scans``, ``/Volumes/Scans``)."""
    old, new = _split(stored), _split(found)
    same = 0
    while same < min(len(old), len(new)) - 1 and old[-1 - same] == new[-1 - same]:
        same += 1
    if same == 0:
        return None
    return _joined(old[:-same]), _joined(new[:-same])


def _joined(parts: list[str]) -> str:
    if parts and parts[0] == "/":
        return "/" + "/".join(parts[1:])
    if parts and ntpath.splitdrive(parts[0])[0]:
        return parts[0] + "\\" + "\\".join(parts[1:])
    return os.path.join(*parts) if parts else ""


@event.listens_for(Image, "load")
def _path_here(image: Image, context: object) -> None:
    session: Session | None = getattr(context, "session", None)
    roots = session.info.get(SESSION_KEY) if session is not None else None
    if roots:
        set_committed_value(image, "path", roots.resolve(image.path))
