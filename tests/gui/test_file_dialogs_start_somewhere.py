"""Every file dialog of the app opens in a folder it chose (the one last used, or the curator's own), never in
whatever the working directory is — the program's own folder when started from it (issue 27, 4 and 10)."""

from __future__ import annotations

import ast
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "gui"
DIALOGS = {"getOpenFileName": 3, "getOpenFileNames": 3, "getSaveFileName": 3, "getExistingDirectory": 3}


def test_every_file_dialog_is_given_its_start_folder() -> None:
    calls, missing = 0, []
    for path in sorted(GUI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "QFileDialog"
                    and node.func.attr in DIALOGS):
                calls += 1
                given = len(node.args) >= DIALOGS[node.func.attr] or any(k.arg == "dir" for k in node.keywords)
                if not given:
                    missing.append(f"{path.relative_to(GUI.parent)}:{node.lineno} {node.func.attr}")
    assert calls >= 10, calls  # the scan found the dialogs
    assert missing == []
