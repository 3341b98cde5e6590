"""``marginalia models …`` as a user runs it, against the fake hub."""

from __future__ import annotations

import json
import pickle
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models.catalogue import CATALOGUE, get_spec
from cli_runner import run_cli
from tests.modelkit.fake_hub import FakeHub
from tests.modelkit.weights_files import weights_file_bytes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path):
    hub = FakeHub().start()
    spec = get_spec("dinov2-reg-small")
    for file in spec.files:
        hub.add(spec.source.repo_id, file.filename, weights_file_bytes(file.filename, 200_000) if file.filename.endswith(".safetensors")
                else b"{}")
    yield {**os.environ, "HF_ENDPOINT": hub.endpoint, "MARGINALIA_MODELS": str(tmp_path / "models")}
    hub.stop()


def models(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "main.py"), "models", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_download_list_info_remove(env: dict[str, str], tmp_path: Path) -> None:
    """Seconds: five fresh processes of the command line (the hub client reads its address at import)."""
    downloaded = models(env, "download", "dinov2-reg-small")
    assert downloaded.returncode == 0, downloaded.stderr
    assert "verified against its published checksums" in downloaded.stdout
    listed = json.loads(models(env, "list", "--json").stdout)
    row = next(m for m in listed["models"] if m["id"] == "dinov2-reg-small")
    assert row["installed"] and row["installed_size"] == len(weights_file_bytes("model.safetensors", 200_000)) + 4
    assert len(listed["models"]) == len(CATALOGUE)
    info = models(env, "info", "dinov2-reg-small").stdout
    assert "hf://facebook/dinov2-with-registers-small@main" in info
    assert models(env, "remove", "dinov2-reg-small").returncode == 0
    after = json.loads(models(env, "list", "--json").stdout)["models"]
    assert not next(m for m in after if m["id"] == "dinov2-reg-small")["installed"]


def test_errors_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    unknown = models(env, "download", "sam-vit-x")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "Did you mean sam-vit-b" in unknown.stderr
    missing = models(env, "import", "hi-sam-vit-b", str(tmp_path / "nothing-here.pth"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    not_installed = models(env, "remove", "clip-vit-b-32")
    assert not_installed.returncode == 1 and "not installed" in not_installed.stderr


def test_a_padded_pickle_of_the_right_size_is_refused_and_verified_is_said_only_when_it_is(
        tmp_path: Path, tiny_models) -> None:
    env = {**os.environ, "MARGINALIA_MODELS": str(tmp_path / "models")}
    spec = get_spec("sam-vit-b")
    padded = tmp_path / spec.weights_file
    padded.write_bytes(pickle.dumps({"weights": [0.5] * 4}))
    os.truncate(padded, spec.source.file.size)  # zeros up to the published size (sparse: no 375 MB written)
    refused = run_cli("models", "import", "sam-vit-b", str(padded), env=env)
    assert refused.returncode == 1 and "verified" not in refused.stdout
    assert "not a readable weights file" in refused.stderr and "Nothing was installed" in refused.stderr
    assert not (tmp_path / "models" / "sam-vit-b").exists()
    checkpoint = tiny_models("hi-sam-vit-b") / "hi_sam_b.pth"  # hi-sam: the catalogue has no checksum for it
    accepted = run_cli("models", "import", "hi-sam-vit-b", str(checkpoint), env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert "verified" not in accepted.stdout and "its contents were checked" in accepted.stdout
    info = run_cli("models", "info", "sam-vit-l", env=env).stdout
    assert "dl.fbaipublicfiles.com" in info or "https://" in info
    by_hand = run_cli("models", "info", "hi-sam-vit-l", env=env).stdout  # issue 27, 3: says where to get it
    assert "models import hi-sam-vit-l FILE" in by_hand and "github.com/ymy-k/Hi-SAM" in by_hand
