"""Where Marginalia keeps its own files (not the curator's images).

``MARGINALIA_DATA_DIR`` overrides the per-user data folder; tests and portable
installs use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Marginalia"
# The database inside a project folder; its presence is what makes a folder a project.
DB_FILENAME = "project.sqlite"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"


def user_data_dir() -> Path:
    override = os.environ.get("MARGINALIA_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def demo_project_dir() -> Path:
    return user_data_dir() / "demo-project"
