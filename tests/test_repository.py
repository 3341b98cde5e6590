"""The repository holds sources, not what a build or a package manager makes: no tracked file over 1 MB
outside the places that keep pictures on purpose (the demo scans in ``assets/``, ``docs/screenshots/``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 1024 * 1024
ALLOWED_FOLDERS = ("assets/", "docs/screenshots/")


def _oversized_tracked_files(repo: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    oversized = []
    for raw in filter(None, listed.split(b"\0")):
        name = raw.decode("utf-8", "surrogateescape")
        if name.startswith(ALLOWED_FOLDERS):
            continue
        path = repo / name
        # A file deleted in the work tree but not yet in the index has no size to judge.
        if path.is_file() and path.stat().st_size > LIMIT_BYTES:
            oversized.append(f"{name} ({path.stat().st_size / LIMIT_BYTES:.1f} MB)")
    return oversized


def test_no_tracked_file_over_a_megabyte_outside_assets_and_screenshots() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert _oversized_tracked_files(REPO) == []


def test_the_size_check_catches_a_committed_wheel(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "scan.tif").write_bytes(b"\0" * (LIMIT_BYTES + 1))
    (tmp_path / "tool-1.0-py3-none-any.whl").write_bytes(b"\0" * (LIMIT_BYTES + 1))
    (tmp_path / "small.py").write_text("x = 1\n")
    subprocess.run(["git", "add", "-f", "."], cwd=tmp_path, check=True)
    assert _oversized_tracked_files(tmp_path) == ["tool-1.0-py3-none-any.whl (1.0 MB)"]
