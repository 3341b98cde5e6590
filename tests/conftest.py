import os
from pathlib import Path

import pytest

# GUI tests render offscreen; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MARGINALIA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user's data folder.
    monkeypatch.setenv("MARGINALIA_DATA_DIR", str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the shared sample scans are missing at {SHARED_DATA}")
        pytest.skip(f"shared sample scans not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def project(tmp_path: Path):
    from engine.project import Project

    with Project.create(tmp_path / "project", name="Test project") as opened:
        yield opened
