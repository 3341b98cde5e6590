"""``marginalia models …`` as a user runs it, against the fake hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models.catalogue import CATALOGUE, get_spec
from tests.modelkit.fake_hub import FakeHub

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path):
    hub = FakeHub().start()
    spec = get_spec("dinov2-reg-small")
    for file in spec.files:
        hub.add(spec.source.repo_id, file.filename, os.urandom(200_000) if file.filename.endswith(".safetensors")
                else b"{}")
    yield {**os.environ, "HF_ENDPOINT": hub.endpoint, "MARGINALIA_MODELS": str(tmp_path / "models")}
    hub.stop()


def models(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "main.py"), "models", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_download_list_info_remove(env: dict[str, str], tmp_path: Path) -> None:
    downloaded = models(env, "download", "dinov2-reg-small")
    assert downloaded.returncode == 0, downloaded.stderr
    assert "verified" in downloaded.stdout
    listed = json.loads(models(env, "list", "--json").stdout)
    row = next(m for m in listed["models"] if m["id"] == "dinov2-reg-small")
    assert row["installed"] and row["installed_size"] == 200_004
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
