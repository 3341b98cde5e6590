"""The model store and downloads, through the real huggingface_hub client against a fake hub."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import JobCancelled
from engine.jobs import CancelToken, JobProgress
from engine.models.catalogue import CATALOGUE, ModelFile, UrlSource, get_spec
from engine.models.download import DownloadError, download_model
from engine.models.store import ModelStore, VerificationError
from tests.modelkit.fake_hub import FakeHub
from tests.modelkit.weights_files import weights_file_bytes

DINO = "dinov2-reg-small"  # a real catalogue entry: three files from facebook/dinov2-with-registers-small


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def _serve(hub: FakeHub, model_id: str, weights: int = 400_000) -> dict[str, bytes]:
    spec = get_spec(model_id)
    contents = {}
    for file in spec.files:
        data = weights_file_bytes(file.filename, weights) if file.filename.endswith((".safetensors", ".bin")) \
            else b'{"k": 1}'
        hub.add(spec.source.repo_id, file.filename, data)
        contents[file.filename] = data
    return contents


def test_every_catalogue_entry_is_complete() -> None:
    ids = [spec.id for spec in CATALOGUE]
    assert len(ids) == len(set(ids))
    for family in ("sam", "hi-sam", "grounding-dino", "dino", "dinov2", "open-clip"):
        assert any(spec.family == family for spec in CATALOGUE), family
    for spec in CATALOGUE:
        assert spec.licence and spec.download_size > 0 and spec.adapter.startswith("engine.models.adapters.")
        assert all(get_spec(required) for required in spec.requires)


def test_download_reports_progress_verifies_and_installs(hub: FakeHub, store: ModelStore) -> None:
    contents = _serve(hub, DINO)
    seen: list[JobProgress] = []
    installed = download_model(DINO, store, progress=seen.append)
    assert store.get(DINO) == installed
    for name, data in contents.items():
        assert installed.path(name).read_bytes() == data
    assert seen[-1].done == seen[-1].total == sum(len(d) for d in contents.values())
    assert all(a.done <= b.done for a, b in zip(seen, seen[1:], strict=False))
    assert "MB/s" in seen[-1].message and "left" in seen[-1].message
    manifest = json.loads((installed.folder / "manifest.json").read_text())
    assert manifest["files"]["model.safetensors"]["size"] == len(contents["model.safetensors"])
    assert not (store.root / ".staging" / DINO).exists()
    assert not (installed.folder / ".cache").exists()


def test_a_dropped_connection_is_resumed(hub: FakeHub, store: ModelStore) -> None:
    contents = _serve(hub, DINO, weights=1_000_000)
    key = ("facebook/dinov2-with-registers-small", "model.safetensors")
    hub.drop_after[key] = 300_000
    installed = download_model(DINO, store)
    assert installed.path("model.safetensors").read_bytes() == contents["model.safetensors"]
    gets = [r for method, path, r in hub.requests if method == "GET" and path.endswith("model.safetensors")]
    assert gets == [None, "bytes=300000-"]


def test_cancel_keeps_the_partial_file_and_the_next_download_resumes(hub: FakeHub, store: ModelStore) -> None:
    _serve(hub, DINO, weights=4_000_000)
    hub.seconds_per_chunk = 0.005
    token = CancelToken()

    def cancel_half_way(progress: JobProgress) -> None:
        if progress.done > 1_000_000:
            token.cancel()

    with pytest.raises(JobCancelled):
        download_model(DINO, store, progress=cancel_half_way, cancel=token)
    assert store.get(DINO) is None, "a cancelled download never looks installed"
    hub.requests.clear()
    hub.seconds_per_chunk = 0.0
    download_model(DINO, store)
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith("model.safetensors")]
    assert ranges and ranges[0] is not None and ranges[0].startswith("bytes=")
    assert int(ranges[0].split("=")[1].split("-")[0]) > 1_000_000


def test_a_corrupted_file_is_refused_and_nothing_is_installed(hub: FakeHub, store: ModelStore) -> None:
    contents = _serve(hub, DINO)
    key = ("facebook/dinov2-with-registers-small", "model.safetensors")
    hub.tamper[key] = bytes(reversed(contents["model.safetensors"]))
    with pytest.raises(VerificationError, match="checksum"):
        download_model(DINO, store)
    assert store.get(DINO) is None
    assert not (store.root / ".staging" / DINO).exists()


def test_a_missing_file_on_the_hub_is_a_clear_error(hub: FakeHub, store: ModelStore) -> None:
    with pytest.raises(DownloadError, match="not found.*Import from file…"):
        download_model(DINO, store)
    assert store.installed() == []


def test_models_without_a_download_explain_where_to_get_them(store: ModelStore) -> None:
    with pytest.raises(DownloadError, match="models import hi-sam-vit-b"):
        download_model("hi-sam-vit-b", store)


def test_offline_mode_refuses_downloads_but_imports_work(hub: FakeHub, store: ModelStore, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        download_model(DINO, store)
    folder = tmp_path / "usb-stick" / "dinov2"
    folder.mkdir(parents=True)
    for name, data in _serve(hub, DINO).items():
        (folder / name).write_bytes(data)
    installed = store.import_files(DINO, [folder.parent], link=True)
    assert sorted(installed.files) == sorted(f.filename for f in get_spec(DINO).files)
    assert os.stat(installed.path("model.safetensors")).st_ino == os.stat(folder / "model.safetensors").st_ino


def test_imports_are_verified_like_downloads(store: ModelStore, tmp_path: Path, tiny_models) -> None:
    data = (tiny_models("hi-sam-vit-b") / "hi_sam_b.pth").read_bytes()
    good = tmp_path / "hi_sam_b.pth"
    good.write_bytes(data)
    spec = replace(get_spec("hi-sam-vit-b"), source=replace(get_spec("hi-sam-vit-b").source,
                   file=ModelFile("hi_sam_b.pth", len(data), "0" * 64)))
    with pytest.raises(VerificationError, match="checksum"):
        store.import_files(spec, [good])
    assert store.get("hi-sam-vit-b") is None
    installed = store.import_files("hi-sam-vit-b", [good])  # the catalogue gives no checksum
    assert installed.path("hi_sam_b.pth").read_bytes() == data
    store.remove("hi-sam-vit-b")
    assert store.get("hi-sam-vit-b") is None
    noise = tmp_path / "noise" / "hi_sam_b.pth"
    noise.parent.mkdir()
    noise.write_bytes(os.urandom(5000))
    with pytest.raises(VerificationError, match="not a readable weights file"):  # what it holds is looked at
        store.import_files("hi-sam-vit-b", [noise])
    assert store.get("hi-sam-vit-b") is None


def test_url_sources_resume_partial_files(hub: FakeHub, store: ModelStore) -> None:
    data = weights_file_bytes("sam_vit_b_01ec64.pth", 700_000)
    hub.add("", "checkpoints/sam_vit_b_01ec64.pth", data)
    spec = replace(get_spec("sam-vit-b"), source=UrlSource(
        f"{hub.endpoint}/checkpoints/sam_vit_b_01ec64.pth", ModelFile("sam_vit_b_01ec64.pth", len(data))))
    staging = store.staging_dir(spec.id)
    (staging / "sam_vit_b_01ec64.pth.part").write_bytes(data[:250_000])
    installed = download_model(spec, store)
    assert installed.path("sam_vit_b_01ec64.pth").read_bytes() == data
    assert ("GET", "/checkpoints/sam_vit_b_01ec64.pth", "bytes=250000-") in hub.requests


def test_an_unreachable_server_is_said_in_plain_words(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DownloadError) as raised:
        download_model(DINO, store)
    message = str(raised.value)
    assert "could not be reached" in message and "Import from file…" in message
    assert "Errno" not in message and "urlopen" not in message and "httpx" not in message.lower()


def test_offline_and_full_disk_are_named_as_such() -> None:
    import errno
    import socket
    import urllib.error

    from engine.models.catalogue import get_spec
    from engine.models.download import network_error

    spec = get_spec(DINO)
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as lookup:
            raise urllib.error.URLError(lookup) from lookup
    except urllib.error.URLError as offline:
        text = str(network_error(spec, offline))
    assert "seems to be offline" in text and "Import from file…" in text and "Errno" not in text
    assert "'marginalia models import'" in text and "press Download" not in text  # words for both clients
    full = str(network_error(spec, OSError(errno.ENOSPC, "No space left on device")))
    assert "the disk is full" in full and "GB free" in full and "what was downloaded so far is kept" in full
