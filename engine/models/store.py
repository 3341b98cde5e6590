"""The models folder, shared by all projects: what is installed, verified installs, removal.

Layout::

    MODELS/
      <model id>/            an installed model: its files and manifest.json
      .staging/<model id>/   downloads and imports in progress (never looks installed)

A model is installed only by renaming a complete, verified staging folder into
place, so an interrupted download or a failed check never leaves a model that
looks usable. ``MARGINALIA_MODELS`` moves the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import MarginaliaError
from engine.fileio import sha256_file, write_atomically
from engine.jobs import CancelToken
from engine.models.catalogue import ModelFile, ModelSpec, get_spec
from engine.models.file_checks import ContentError, describe_contents
from engine.paths import user_data_dir

MANIFEST = "manifest.json"


class VerificationError(MarginaliaError):
    """A model file is not what the catalogue promises; nothing was installed."""


def models_dir() -> Path:
    override = os.environ.get("MARGINALIA_MODELS")
    return Path(override).expanduser() if override else user_data_dir() / "models"


@dataclass(frozen=True, slots=True)
class InstalledModel:
    id: str
    folder: Path
    files: dict[str, dict[str, object]]
    installed_at: str
    source: str

    @property
    def size(self) -> int:
        return sum(int(entry["size"]) for entry in self.files.values())  # type: ignore[call-overload]

    @property
    def verified(self) -> bool:
        """Every file matched a published checksum (the catalogue's or the hub's), not only its size."""
        return all(entry.get("checksum_matched") is True for entry in self.files.values())

    def how_checked(self) -> str:
        """For the curator: "verified" only when it is."""
        if self.verified:
            return "verified against its published checksums"
        return "its contents were checked (no published checksum exists to compare it with)"

    def path(self, filename: str) -> Path:
        return self.folder / filename

    def weights_sha256(self) -> str:
        """The checksum of the weights file: what names this checkpoint in caches and exports."""
        return str(self.files[get_spec(self.id).weights_file]["sha256"])


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else models_dir()

    # -- reading ---------------------------------------------------------------------

    def installed(self) -> list[InstalledModel]:
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            model = self._read(folder)
            if model is not None:
                found.append(model)
        return found

    def get(self, model_id: str) -> InstalledModel | None:
        return self._read(self.root / model_id)

    def require(self, model_id: str) -> InstalledModel:
        model = self.get(model_id)
        if model is None:
            spec = get_spec(model_id)
            raise MarginaliaError(
                f"{spec.name} is not installed. Download it with 'marginalia models download "
                f"{model_id}' or from the Models dialog.")
        return model

    def _read(self, folder: Path) -> InstalledModel | None:
        manifest = folder / MANIFEST
        if folder.name.startswith(".") or not manifest.is_file():
            return None
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            return InstalledModel(data["id"], folder, data["files"], data["installed_at"], data["source"])
        except (OSError, ValueError, KeyError):
            return None  # a damaged manifest: treat as not installed, so it can be fetched again

    # -- installing --------------------------------------------------------------------

    def staging_dir(self, model_id: str) -> Path:
        folder = self.root / ".staging" / model_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def verify_file(self, expected: ModelFile, path: Path, *, sha256: str | None = None,
                    cancel: CancelToken | None = None) -> dict[str, object]:
        """Check size and checksum; returns the manifest entry. ``sha256`` overrides the catalogue's."""
        if not path.is_file():
            raise VerificationError(f"{expected.filename} is missing.")
        size = path.stat().st_size
        if expected.size is not None and size != expected.size:
            raise VerificationError(
                f"{expected.filename} has {size:,} bytes but should have {expected.size:,}; "
                "it is incomplete or a different file. Nothing was installed.")
        actual = sha256_file(path, cancel.raise_if_cancelled if cancel else None)
        wanted = sha256 or expected.sha256
        if wanted is not None and actual != wanted.lower():
            raise VerificationError(
                f"{expected.filename} failed its checksum (sha256 {actual[:12]}… instead of "
                f"{wanted[:12]}…); it is damaged or not the published file. Nothing was installed.")
        try:
            contents = describe_contents(path)
        except ContentError as error:
            raise VerificationError(f"{error} Nothing was installed.") from error
        return {"size": size, "sha256": actual, "checksum_matched": wanted is not None, "contents": contents}

    def install(self, spec: ModelSpec, staging: Path, entries: dict[str, dict[str, object]],
                source: str) -> InstalledModel:
        """Move a verified staging folder into place, atomically."""
        manifest = {"id": spec.id, "files": entries, "source": source,
                    "installed_at": datetime.now(UTC).isoformat(timespec="seconds")}
        write_atomically(staging / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
        for leftover in staging.iterdir():  # download caches, partial files
            if leftover.name != MANIFEST and leftover.name not in entries:
                _remove(leftover)
        target = self.root / spec.id
        if target.exists():
            _remove(target)
        staging.rename(target)
        installed = self.get(spec.id)
        assert installed is not None
        return installed

    def import_files(self, model: str | ModelSpec, paths: list[Path], *, link: bool = False,
                     cancel: CancelToken | None = None) -> InstalledModel:
        """Install from local files or a folder (offline sites), with the same checks as a download."""
        spec = get_spec(model) if isinstance(model, str) else model
        available = _index_files(paths)
        staging = self.staging_dir(spec.id)
        try:
            entries = {}
            for expected in spec.files:
                source = available.get(expected.filename)
                if source is None and not expected.optional and len(available) == 1 and \
                        sum(not f.optional for f in spec.files) == 1:
                    source = next(iter(available.values()))  # one file given for a one-file model
                if source is None and expected.optional:
                    continue
                if source is None:
                    raise VerificationError(
                        f"{expected.filename} was not found in {', '.join(str(p) for p in paths)}.")
                target = staging / expected.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                _place(source, target, link)
                entries[expected.filename] = self.verify_file(expected, target, cancel=cancel)
            _check_contents(spec, staging)
            return self.install(spec, staging, entries, source="import")
        except BaseException:
            _remove(staging)
            raise

    def remove(self, model_id: str) -> None:
        get_spec(model_id)
        folder = self.root / model_id
        if not (folder / MANIFEST).is_file():
            raise MarginaliaError(f"{model_id} is not installed.")
        _remove(folder)


def _check_contents(spec: ModelSpec, staging: Path) -> None:
    """A file imported by hand is checked by its adapter (``verify_files``, where it has one) before it is
    installed: the wrong checkpoint is refused now, with its reason, not at its first use."""
    from engine.models.adapters import adapter_for  # noqa: PLC0415 - adapters import the store

    try:
        adapter = adapter_for(spec)
    except MarginaliaError:
        return  # no adapter yet: nothing to check the file with
    verify = getattr(adapter, "verify_files", None)
    if verify is not None:
        verify(spec, staging)


def _index_files(paths: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in paths:
        path = Path(path).expanduser()
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    found.setdefault(item.name, item)
        elif path.is_file():
            found[path.name] = path
        else:
            raise MarginaliaError(f"{path} does not exist.")
    return found


def _place(source: Path, target: Path, link: bool) -> None:
    if target.exists():
        target.unlink()
    if link:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another disk: copy instead
    shutil.copyfile(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
