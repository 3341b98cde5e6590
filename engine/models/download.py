"""Downloading models: progress (bytes, rate, time left), cancel, resume, verification.

Hub files are resolved by ``huggingface_hub`` (``HF_ENDPOINT``, revisions,
redirects, tokens, the hub's checksums); the bytes of every source are then
streamed here with byte ranges (proxies from the environment apply). Either way files land in the store's staging folder, are checked
(size, and sha256 from the catalogue or the hub's checksum), and are then
installed in one rename. A cancelled or dropped download keeps its partial
files in staging, so the next attempt resumes.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import build_hf_headers

from engine.errors import MarginaliaError
from engine.jobs import CancelToken, JobProgress, ProgressCallback, describe_duration
from engine.models.catalogue import HubSource, ModelFile, ModelSpec, UrlSource, UserSuppliedSource, get_spec
from engine.models.store import InstalledModel, ModelStore, VerificationError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class DownloadError(MarginaliaError):
    pass


_OURS = (MarginaliaError,)  # our own errors (cancel included) pass through unchanged


class _Meter:
    """Turns byte counts into progress reports with a rate and a time left."""

    def __init__(self, total: int, progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._cancel = cancel
        self._started = time.monotonic()
        self._counted_since_start = 0
        self._last_report = 0.0

    def at(self, done: int) -> None:
        """Bytes already on disk (a resumed file): counted as done, not as speed."""
        self.done = done
        self.add(0)

    def add(self, count: int, *, resumed: bool = False) -> None:
        if self._cancel is not None:
            self._cancel.raise_if_cancelled()
        self.done += count
        if not resumed:
            self._counted_since_start += count
        now = time.monotonic()
        if self._progress is not None and (now - self._last_report > 0.1 or self.done >= self.total):
            self._last_report = now
            self._progress(JobProgress(self.done, self.total, self.describe(now)))

    def describe(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        rate = self._counted_since_start / elapsed
        text = f"{self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB"
        if rate > 0:
            left = max(self.total - self.done, 0) / rate
            text += f" · {rate / 1e6:,.1f} MB/s · {describe_duration(left)} left"
        return text


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def download_model(
    model: str | ModelSpec,
    store: ModelStore,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> InstalledModel:
    """Download, verify and install a catalogue model (by id, or its spec)."""
    spec = get_spec(model) if isinstance(model, str) else model
    source = spec.source
    if isinstance(source, UserSuppliedSource):
        raise DownloadError(f"{spec.name} has no dependable download. Get {source.file.filename} from "
                            f"{source.where_to_get_it}, then run 'marginalia models import {spec.id} FILE'.")
    if _offline():
        raise DownloadError(f"Downloads are off (offline mode). Copy the files of {spec.name} here and "
                            f"run 'marginalia models import {spec.id} PATH'.")
    for required in spec.requires:  # e.g. Hi-SAM needs its SAM checkpoint
        if store.get(required) is None:
            download_model(required, store, progress=progress, cancel=cancel)
    staging = store.staging_dir(spec.id)
    try:
        if isinstance(source, HubSource):
            entries = _download_hub(spec, source, store, staging, progress, cancel)
        else:
            entries = _download_url(spec, source, store, staging, progress, cancel)
        return store.install(spec, staging, entries, source="download")
    except VerificationError as error:
        shutil.rmtree(staging, ignore_errors=True)  # a wrong file is never resumed
        raise VerificationError(f"{error} The download was damaged on the way or the server sent another file; "
                                "it was removed. Download it again for a fresh copy, "
                                f"{_IMPORT_INSTEAD.removeprefix('or ')}.") from error
    # Any other failure (a cancel included) keeps the partial files for a later resume.


# -- the hub -------------------------------------------------------------------------


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _hub_errors(spec: ModelSpec, error: Exception) -> DownloadError:
    if isinstance(error, OfflineModeIsEnabled):
        return DownloadError(f"Downloads are off (offline mode); import {spec.id} from files instead.")
    if isinstance(error, HfHubHTTPError):
        status = _status(error)
        if status == 404:
            return DownloadError(f"The model server has no such file for {spec.name} (not found). The "
                                 "catalogue entry may be out of date; nothing was installed. Use Import from "
                                 "file… with files you have.")
        return DownloadError(f"The model hub refused the download of {spec.name} ({status}): {error}")
    return network_error(spec, error)


_OFFLINE_SIGNS = ("name or service not known", "temporary failure in name resolution", "getaddrinfo failed",
                  "nodename nor servname", "no address associated", "name resolution", "network is unreachable")
# Said to the app and the command line alike: both ways of importing are named.
_IMPORT_INSTEAD = ("or get the files on another computer and import them (Import from file… in the Models dialog, "
                   "'marginalia models import' on the command line)")


def network_error(spec: ModelSpec, error: BaseException, folder: Path | None = None) -> DownloadError:
    """A failed transfer in a curator's words, with the next step; never a raw socket message."""
    chain = _causes(error)
    text = " ".join(str(item).lower() for item in chain)
    if any(isinstance(item, OSError) and item.errno == errno.ENOSPC for item in chain):
        where = folder or Path.home()
        free = shutil.disk_usage(where).free if where.exists() else 0
        return DownloadError(f"{spec.name} could not be downloaded: the disk is full ({free / 2**30:.1f} GB free "
                             f"where models are kept). Make room and download again; what was downloaded "
                             "so far is kept.")
    if any(isinstance(item, socket.gaierror) for item in chain) or any(sign in text for sign in _OFFLINE_SIGNS):
        return DownloadError(f"{spec.name} could not be downloaded: this computer seems to be offline (the "
                             "model server's name could not be looked up). Connect to the internet and download "
                             f"again — it resumes where it stopped — {_IMPORT_INSTEAD}")
    if any(isinstance(item, (TimeoutError, socket.timeout)) for item in chain) or "timed out" in text:
        return DownloadError(f"{spec.name} could not be downloaded: the model server did not answer in time. "
                             f"Try again later — the download resumes where it stopped — {_IMPORT_INSTEAD}")
    if any(isinstance(item, ConnectionError) for item in chain) or "connection refused" in text:
        return DownloadError(f"{spec.name} could not be downloaded: the model server could not be reached "
                             "(the connection was refused or cut; a proxy or firewall may be in the way). Try "
                             f"again later — the download resumes where it stopped — {_IMPORT_INSTEAD}")
    return DownloadError(f"{spec.name} could not be downloaded ({type(error).__name__}). Try again — the "
                         f"download resumes where it stopped — {_IMPORT_INSTEAD}")


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and reason not in chain:
            chain.append(reason)
        current = current.__cause__ or current.__context__
    return chain


def _status(error: HfHubHTTPError) -> int | None:
    return error.response.status_code if error.response is not None else None


def _download_hub(spec: ModelSpec, source: HubSource, store: ModelStore, staging: Path,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[str, dict[str, object]]:
    # huggingface_hub resolves the files (endpoint, revision, redirects, tokens, checksums);
    # the bytes are streamed here so that a cancelled or crashed download resumes where it stopped.
    endpoint = _endpoint()
    metadata = {}
    try:
        for file in source.files:
            url = hf_hub_url(source.repo_id, file.filename, revision=source.revision, endpoint=endpoint)
            try:
                metadata[file.filename] = get_hf_file_metadata(url, endpoint=endpoint)
            except HfHubHTTPError as error:
                if not (file.optional and _status(error) == 404):
                    raise
        headers = build_hf_headers(library_name="marginalia")
    except _OURS:
        raise
    except Exception as error:  # noqa: BLE001 - the hub client's network errors vary by version
        raise _hub_errors(spec, error) from error
    meter = _Meter(sum(m.size or 0 for m in metadata.values()), progress, cancel)
    entries = {}
    for expected in source.files:
        meta = metadata.get(expected.filename)
        if meta is None:
            continue  # an optional file this revision does not have
        target = staging / expected.filename
        _fetch(meta.location, headers, target, meter, spec)
        etag = (meta.etag or "").strip('"').lower()
        hub_sha = etag if _SHA256.match(etag) else None  # large files: the ETag is their sha256
        size_known = ModelFile(expected.filename, expected.size or meta.size, expected.sha256)
        entries[expected.filename] = store.verify_file(size_known, target, sha256=expected.sha256 or hub_sha,
                                                       cancel=cancel)
    return entries


# -- plain HTTPS ----------------------------------------------------------------------


def _download_url(spec: ModelSpec, source: UrlSource, store: ModelStore, staging: Path,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[str, dict[str, object]]:
    expected = source.file
    target = staging / expected.filename
    meter = _Meter(expected.size or 0, progress, cancel)
    _fetch(source.url, {}, target, meter, spec)
    return {expected.filename: store.verify_file(expected, target, cancel=cancel)}


def _fetch(url: str, headers: dict[str, str], target: Path, meter: _Meter, spec: ModelSpec,
           attempts: int = 5) -> None:
    """Stream ``url`` into ``target``, continuing a ``.part`` file left by an earlier attempt.

    A connection that drops part-way is picked up again with a byte range, a
    few times, before the download is reported as interrupted (and resumable).
    """
    partial = target.with_name(target.name + ".part")
    if target.exists() and not partial.exists():
        meter.add(target.stat().st_size, resumed=True)  # finished in an earlier attempt
        return
    file_start = meter.done
    for _attempt in range(attempts):
        have = partial.stat().st_size if partial.exists() else 0
        expected = _stream_once(url, headers, partial, have, meter, file_start, spec)
        if expected is None or partial.stat().st_size >= expected:
            partial.replace(target)
            return
    raise DownloadError(f"The connection kept dropping while downloading {spec.name}; try again to resume.")


def _stream_once(url: str, headers: dict[str, str], partial: Path, have: int, meter: _Meter,
                 file_start: int, spec: ModelSpec) -> int | None:
    """One request; returns the full size the server announced (None if it did not say)."""
    request = urllib.request.Request(url, headers={**headers, **({"Range": f"bytes={have}-"} if have else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 - catalogue and hub URLs
            if reply.status != 206:
                have = 0  # the server ignored the range (or there was none): start over
            length = reply.headers.get("Content-Length")
            expected = int(length) + have if length is not None else None
            if not meter.total and expected:
                meter.total = expected
            meter.at(file_start + have)
            try:
                _stream_to(partial, iter(lambda: reply.read(_CHUNK), b""), append=bool(have),
                           on_chunk=meter.add)
            except http.client.IncompleteRead:
                pass  # dropped: the caller resumes from what arrived
            return expected
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise DownloadError(f"The file of {spec.name} is not on the server any more ({url} was not found); "
                                "nothing was installed. Use Import from file… with files you have.") from error
        if error.code == 416:  # asked for bytes past the end: the partial file is stale
            partial.unlink(missing_ok=True)
            raise DownloadError(f"The download of {spec.name} must start over; please try again.") from error
        raise DownloadError(f"Could not download {spec.name}: the server answered {error.code}.") from error
    except (urllib.error.URLError, OSError) as error:
        raise network_error(spec, error, partial.parent) from error


def _stream_to(path: Path, chunks: Any, *, append: bool, on_chunk: Callable[[int], None]) -> None:
    with path.open("ab" if append else "wb") as stream:
        for chunk in chunks:
            stream.write(chunk)
            on_chunk(len(chunk))
