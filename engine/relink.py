"""Find images whose files moved, by content hash, and point the project at them (a team project: this computer's
collection roots, since the other computers keep finding them where they are)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from engine.errors import MarginaliaError
from engine.fileio import sha256_file
from engine.ingest.walk import collect
from engine.jobs import CancelToken, ProgressCallback, report
from engine.paths import displayable
from engine.project import Project
from engine.store.schema import Image


@dataclass(slots=True)
class RelinkReport:
    relinked: list[tuple[str, str]] = field(default_factory=list)
    still_missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.relinked)} image file(s) relinked, {len(self.still_missing)} still missing"


def missing_images(project: Project) -> dict[str, list[int]]:
    """Paths that no longer exist, with the ids of the image rows (pages) that use them."""
    with project.unit_of_work() as session:
        rows = session.execute(select(Image.path, Image.id)).all()
    missing: dict[str, list[int]] = defaultdict(list)
    for path, image_id in rows:
        if not os.path.exists(project.roots.resolve(path)):
            missing[path].append(image_id)
    return dict(missing)


def relink(
    project: Project,
    folders: list[Path],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RelinkReport:
    """Search ``folders`` for the content of every missing image and update its path.

    Only files whose size matches a missing file are hashed, so relinking a
    large collection reads little more than the moved files themselves.
    """
    absent = [folder for folder in folders if not Path(folder).is_dir()]
    if absent:
        raise MarginaliaError(f"{displayable(absent[0])} is not a folder that exists here; nothing was relinked.")
    outcome = RelinkReport()
    missing = missing_images(project)
    if not missing:
        return outcome
    with project.unit_of_work() as session:
        wanted_rows = session.execute(
            select(Image.path, Image.sha256, Image.file_size).where(Image.path.in_(list(missing)))
        ).all()
    wanted = {(sha, size): path for path, sha, size in wanted_rows}
    sizes = {size for _, size in wanted}
    candidates, _ = collect(folders)
    new_paths: dict[str, str] = {}
    for done, candidate in enumerate(candidates, start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, done, len(candidates), candidate.path.name)
        try:
            size = candidate.path.stat().st_size
            if size not in sizes:
                continue
            old_path = wanted.get((sha256_file(candidate.path), size))
        except OSError:
            continue
        if old_path is not None and old_path not in new_paths:
            new_paths[old_path] = str(candidate.path)
    if project.is_team:
        _note_here(project, new_paths)
        outcome.relinked += list(new_paths.items())
    else:
        with project.unit_of_work() as session:
            for old_path, new_path in new_paths.items():
                for image in session.scalars(select(Image).where(Image.path == old_path)):
                    image.path = new_path
                    image.file_mtime = os.stat(new_path).st_mtime
                outcome.relinked.append((old_path, new_path))
    outcome.still_missing = sorted(set(missing) - set(new_paths))
    return outcome


def _note_here(project: Project, new_paths: dict[str, str]) -> None:
    """A team project's scans found elsewhere on this computer: noted in this computer's collection roots (the
    shared database keeps the paths the other computers use). Where moved files share the folders below some
    point, that folder pair becomes a root, so the pages not yet looked for are found too."""
    from collections import Counter

    from engine.collection_roots import root_between

    roots = project.roots
    pairs = Counter(pair for old, new in new_paths.items() if (pair := root_between(old, new)) is not None)
    for (stored, here), _count in pairs.most_common():
        roots.add_root(stored, here)
    for old, new in new_paths.items():
        if roots.resolve(old) != new:
            roots.files[old] = new
    roots.save(project.folder)
