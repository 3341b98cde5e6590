"""Which Marginalia this is: its version, the commit it was built from, and the model libraries it runs on.

An installed app carries ``engine/build_info.json`` (written by ``make package``); a source checkout asks git.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import engine

BUILD_INFO = Path(__file__).resolve().parent / "build_info.json"

# (distribution, module): what runs the models and reads the scans.
LIBRARIES = (
    ("torch", "torch"), ("torchvision", "torchvision"), ("onnxruntime", "onnxruntime"),
    ("faiss-cpu", "faiss"), ("open_clip_torch", "open_clip"), ("transformers", "transformers"),
    ("segment-anything", "segment_anything"), ("opencv-python-headless", "cv2"), ("pycocotools", "pycocotools"),
    ("PySide6-Essentials", "PySide6"), ("pyvips", "pyvips"), ("pypdfium2", "pypdfium2"), ("pillow", "PIL"),
)


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str  # short hash, with "+changes" when built from a checkout with uncommitted changes
    built: str  # ISO date of the package build; "" when run from source

    def line(self) -> str:
        return f"Marginalia {self.version} (commit {self.commit}{', built ' + self.built if self.built else ''})"


@cache
def build_info() -> BuildInfo:
    if BUILD_INFO.is_file():
        data = json.loads(BUILD_INFO.read_text(encoding="utf-8"))
        return BuildInfo(str(data.get("version", engine.__version__)), str(data.get("commit", "unknown")),
                         str(data.get("built", "")))
    return BuildInfo(engine.__version__, source_commit(Path(__file__).resolve().parent.parent), "")


def source_commit(folder: Path) -> str:
    """The checkout's commit, or "unknown" (no git, not a checkout)."""
    git = shutil.which("git")
    if git is None or not (folder / ".git").exists():
        return "unknown"
    try:
        commit = subprocess.run([git, "-C", str(folder), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run([git, "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+changes" if dirty else commit


def library_versions(*, load: bool = False) -> dict[str, str]:
    """Each model library's version, from its installed metadata; ``load`` imports each one as well (slow:
    torch takes seconds) and reports one that is there but fails to load."""
    found: dict[str, str] = {}
    for distribution, module in LIBRARIES:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = ""
        if load:
            try:
                loaded = importlib.import_module(module)
                version = version or str(getattr(loaded, "__version__", "")) or "present"
            except Exception as error:  # noqa: BLE001 - reported, not raised: this is a diagnosis
                version = f"fails to load: {type(error).__name__}: {error}"
        found[distribution] = version or "missing"
    return found
