"""The import-linter contracts hold, and would catch an engine module importing Qt or a tool importing the window."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=root, env=env)


def test_contracts_are_kept() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout
    assert "3 kept, 0 broken" in result.stdout


def test_an_engine_module_importing_qt_breaks_the_contract(tmp_path: Path) -> None:
    for name in ("engine", "gui", "cli"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "engine" / "sneaky.py").write_text("import superqt  # noqa\nimport gui  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "engine never imports Qt BROKEN" in result.stdout
    assert "are its clients BROKEN" in result.stdout


def test_a_tool_reaching_for_the_main_window_breaks_the_contract(tmp_path: Path) -> None:
    for name in ("engine", "gui", "cli"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "gui" / "tools" / "greedy.py").write_text("from gui.main_window import MainWindow  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "never the main window BROKEN" in result.stdout
