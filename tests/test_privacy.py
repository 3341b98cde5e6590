"""The app writes only to its own folders and sends nothing: importing every model library under a clean
home leaves that home empty (onnxruntime would otherwise start Microsoft's telemetry there)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_loading_the_model_libraries_writes_nothing_in_the_users_home(tmp_path: Path) -> None:
    """Seconds: a fresh process imports every model library under an empty home."""
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("XDG_", "ORT_", "HF_", "TORCH_"))}
    env.update(HOME=str(home), MARGINALIA_DATA_DIR=str(tmp_path / "data"))
    script = ("import engine, onnxruntime, torch, torchvision, transformers, open_clip, faiss, segment_anything, "
              "cv2, pyvips, pypdfium2")
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr
    written = sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())
    assert written == []
