"""Which project page a COCO image entry means — or a refusal when that cannot be known.

Digitisation names files ``00000001.tif`` in every book, so a bare file name
proves little. The evidence is weighed in this order:

1. **Content**: an entry that carries the scan's sha256 (``attributes.sha256``,
   as Marginalia exports, or a top-level ``sha256``) matches only the page with
   that content. If no page has it, the entry is refused even when a file of
   the same name exists: that file holds other content.
2. **Path**: an absolute path, or one relative to the COCO file (``../scans/a.tif``),
   that names a page's file exactly.
3. **Longest path suffix**: the page whose stored path shares the most trailing
   folder names with ``file_name`` (compared in Unicode NFC, ignoring case). A tie
   between several pages is *ambiguous*: the entry is refused with the candidates,
   never attached to one of them by chance.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.store.schema import Image


@dataclass(frozen=True, slots=True)
class Match:
    """The page an entry means, or why it has none (``image`` is then ``None``)."""

    image: Image | None
    reason: str = ""
    candidates: tuple[str, ...] = field(default=())


def _fold(component: str) -> str:
    return unicodedata.normalize("NFC", component).casefold()


def _components(path: str) -> list[str]:
    """A path's folder and file names, whatever the system that wrote it."""
    text = path.replace("\\", "/")
    drive, text = ntpath.splitdrive(text)
    return [part for part in text.split("/") if part not in ("", ".")]


def _is_absolute(file_name: str) -> bool:
    text = file_name.replace("\\", "/")
    return text.startswith("/") or bool(ntpath.splitdrive(text)[0])


def _normalised_path(path: str) -> str:
    return unicodedata.normalize("NFC", posixpath.normpath(path.replace("\\", "/")))


class ImageMatcher:
    """Matches COCO image entries against the pages of a project."""

    def __init__(self, images: Iterable[Image], coco_folder: Path | None = None) -> None:
        self._coco_folder = coco_folder
        self._by_hash: dict[tuple[str, int], Image] = {}
        self._by_name: dict[tuple[str, int], list[Image]] = defaultdict(list)
        self._by_path: dict[tuple[str, int], Image] = {}
        self._folded: dict[int, list[str]] = {}
        for image in images:
            self._by_hash[(image.sha256, image.page_index)] = image
            parts = [_fold(part) for part in _components(image.path)]
            self._folded[image.id] = parts
            if parts:
                self._by_name[(parts[-1], image.page_index)].append(image)
            self._by_path[(_normalised_path(image.path), image.page_index)] = image

    def match(self, entry: dict[str, Any], page: int) -> Match:
        file_name = str(entry.get("file_name") or "")
        sha256 = _declared_hash(entry)
        if sha256 is not None:
            return self._by_content(sha256, page, file_name)
        if not file_name.strip():
            return Match(None, "has neither a file_name nor a content hash")
        exact = self._by_exact_path(file_name, page)
        if exact is not None:
            return Match(exact)
        return self._by_suffix(file_name, page)

    def _by_content(self, sha256: str, page: int, file_name: str) -> Match:
        image = self._by_hash.get((sha256.lower(), page))
        if image is not None:
            return Match(image)
        same_name = self._by_name.get((_fold(_components(file_name)[-1]), page), []) if file_name.strip() else []
        if same_name:
            return Match(None, "carries a content hash (sha256) that no page of the project has; the project's "
                               "file(s) of that name hold different content, so nothing was attached",
                         tuple(image.path for image in same_name))
        return Match(None, "is not in the project (no page has its content hash)")

    def _by_exact_path(self, file_name: str, page: int) -> Image | None:
        text = file_name.replace("\\", "/")
        if _is_absolute(file_name):
            return self._by_path.get((_normalised_path(text), page))
        if self._coco_folder is not None and ".." in _components(text):
            resolved = os.path.normpath(os.path.join(self._coco_folder, text))
            return self._by_path.get((_normalised_path(resolved), page))
        return None

    def _by_suffix(self, file_name: str, page: int) -> Match:
        wanted = [_fold(part) for part in _components(file_name) if part != ".."]
        if not wanted:
            return Match(None, "has a file_name that names no file")
        candidates = self._by_name.get((wanted[-1], page), [])
        if not candidates:
            return Match(None, "is not in the project")
        scored = [(_shared_tail(self._folded[image.id], wanted), image) for image in candidates]
        best = max(score for score, _ in scored)
        winners = [image for score, image in scored if score == best]
        if len(winners) == 1:
            return Match(winners[0])
        return Match(None, f"is ambiguous: {len(winners)} pages of the project have that name and the COCO "
                           "file does not say which (no content hash, no distinguishing folder); nothing was "
                           "attached", tuple(image.path for image in winners))


def _shared_tail(stored: list[str], wanted: list[str]) -> int:
    shared = 0
    for left, right in zip(reversed(stored), reversed(wanted), strict=False):
        if left != right:
            break
        shared += 1
    return shared


def _declared_hash(entry: dict[str, Any]) -> str | None:
    attributes = entry.get("attributes") if isinstance(entry.get("attributes"), dict) else {}
    for value in (attributes.get("sha256"), entry.get("sha256")):
        if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
            return value.lower()
    return None
