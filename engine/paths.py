"""Where Marginalia keeps its own files (not the curator's images).

``MARGINALIA_DATA_DIR`` overrides the per-user data folder; tests and portable
installs use it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

APP_NAME = "Marginalia"
# The database inside a project folder; its presence is what makes a folder a project.
DB_FILENAME = "project.sqlite"
# A team project's folder names its PostgreSQL database in this file instead (engine/store/team.py).
TEAM_FILENAME = "team-database.json"
PROJECT_MARKERS = (DB_FILENAME, TEAM_FILENAME)
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
# What an operating system leaves in folders (lower case): never a scan, never a reason to call a folder full.
OS_LITTER = frozenset({".ds_store", "thumbs.db", "desktop.ini", ".directory", ".localized"})


def user_data_dir() -> Path:
    override = os.environ.get("MARGINALIA_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_file() -> Path:
    """The app's log, named in every fatal message: in the system's place for a user's logs
    (``~/.local/state/Marginalia/log``, ``%LOCALAPPDATA%\\Marginalia\\Logs``, ``~/Library/Logs/Marginalia``),
    or in the data folder that ``MARGINALIA_DATA_DIR`` names (portable installs, tests)."""
    if os.environ.get("MARGINALIA_DATA_DIR"):
        return user_data_dir() / "marginalia.log"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)) / "marginalia.log"


def append_to_log(text: str) -> Path | None:
    """Add ``text`` to the log (for failures before or outside the app's own logging); the log's path, or
    ``None`` when it cannot be written."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")
    except OSError:
        return None
    return path


def user_cache_dir() -> Path:
    """Caches that belong to no writable project (a read-only project's page pyramids)."""
    return user_data_dir() / "cache"


def demo_project_dir() -> Path:
    return user_data_dir() / "demo-project"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def displayable(path: object) -> str:
    """A path as text that any screen or terminal can show on one line.

    Bytes that are not UTF-8 (surrogate escapes) appear as ``\\xNN``, and control
    characters (a newline in a file name) as ``\\n`` or ``\\xNN``; every other name
    is shown as it is.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(
        match.group(), f"\\x{ord(match.group()):02x}"), text)
