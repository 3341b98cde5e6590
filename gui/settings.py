"""The user's settings: curator name, recent projects, last category, window layout, model device.

Stored as an INI file in the user's data folder (``MARGINALIA_DATA_DIR``
moves it), so tests and portable installs never touch the real ones.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from engine.paths import user_data_dir

_MAX_RECENT = 10
MODEL_DEVICES = {"auto": "Automatic (the fastest available)", "cpu": "CPU only",
                 "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (Metal)"}


def default_path() -> Path:
    return user_data_dir() / "settings.ini"


class AppSettings:
    def __init__(self, path: Path | None = None) -> None:
        path = path or default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._settings = QSettings(str(path), QSettings.Format.IniFormat)

    @classmethod
    def scratch_copy(cls) -> AppSettings:
        """The user's settings as they are now, in a copy that is thrown away when the process ends."""
        folder = Path(tempfile.mkdtemp(prefix="marginalia-settings-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        if default_path().is_file():
            shutil.copyfile(default_path(), folder / "settings.ini")
        return cls(folder / "settings.ini")

    @property
    def curator(self) -> str:
        return str(self._settings.value("curator", "") or "")

    @curator.setter
    def curator(self, name: str) -> None:
        self._settings.setValue("curator", name.strip())
        self._settings.sync()

    @property
    def model_device(self) -> str:
        """Where models run: "auto" (best available), "cpu", "cuda" or "mps"."""
        value = str(self._settings.value("models/device", "auto") or "auto")
        return value if value in MODEL_DEVICES else "auto"

    @model_device.setter
    def model_device(self, device: str) -> None:
        self._settings.setValue("models/device", device if device in MODEL_DEVICES else "auto")
        self._settings.sync()

    @property
    def model_precision(self) -> str:
        """"automatic" (half precision where fast and faithful) or "float32"."""
        value = str(self._settings.value("models/precision", "automatic") or "automatic")
        return value if value in ("automatic", "float32") else "automatic"

    @model_precision.setter
    def model_precision(self, value: str) -> None:
        self._settings.setValue("models/precision", value if value in ("automatic", "float32") else "automatic")
        self._settings.sync()

    @property
    def large_jobs_cluster(self) -> str:
        """Where jobs over several pages run: "" (this computer) or a Ray cluster ("local", "auto", an address)."""
        return str(self._settings.value("models/large_jobs_cluster", "") or "").strip()

    @large_jobs_cluster.setter
    def large_jobs_cluster(self, address: str) -> None:
        self._settings.setValue("models/large_jobs_cluster", address.strip())
        self._settings.sync()

    @property
    def pause_on_battery(self) -> bool:
        return str(self._settings.value("models/pause_on_battery", "false")).lower() == "true"

    @pause_on_battery.setter
    def pause_on_battery(self, value: bool) -> None:
        self._settings.setValue("models/pause_on_battery", "true" if value else "false")
        self._settings.sync()

    @property
    def sam_model(self) -> str:
        return str(self._settings.value("sam/model", "") or "")

    @sam_model.setter
    def sam_model(self, model_id: str) -> None:
        self._settings.setValue("sam/model", model_id)
        self._settings.sync()

    @property
    def sam_cache_gb(self) -> float:
        """The most disk SAM's page embeddings may take per project (``[sam] cache_gb`` in the file)."""
        try:
            return max(0.1, float(self._settings.value("sam/cache_gb", 2.0)))
        except (TypeError, ValueError):
            return 2.0

    def recent_projects(self) -> list[Path]:
        value = self._settings.value("recent_projects", []) or []
        items = [value] if isinstance(value, str) else list(value)
        return [Path(item) for item in items if item]

    def remember_project(self, folder: Path) -> None:
        recent = [str(folder)] + [str(p) for p in self.recent_projects() if p != folder]
        self._settings.setValue("recent_projects", recent[:_MAX_RECENT])
        self._settings.sync()

    def forget_project(self, folder: Path) -> None:
        self._settings.setValue("recent_projects",
                                [str(p) for p in self.recent_projects() if p != folder])
        self._settings.sync()

    def _project_id(self, name: str, project_folder: Path) -> int | None:
        value = self._settings.value(f"{name}/{_key(project_folder)}", None)
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def last_category(self, project_folder: Path) -> int | None:
        return self._project_id("last_category", project_folder)

    def set_last_category(self, project_folder: Path, category_id: int) -> None:
        self._settings.setValue(f"last_category/{_key(project_folder)}", category_id)

    def project_value(self, project_folder: Path, name: str) -> str:
        """A tool's remembered text for one project ("" when none)."""
        return str(self._settings.value(f"{name}/{_key(project_folder)}", "") or "")

    def set_project_value(self, project_folder: Path, name: str, value: str) -> None:
        self._settings.setValue(f"{name}/{_key(project_folder)}", value)

    def start_folder(self, purpose: str) -> Path:
        """Where a file dialog for ``purpose`` ("scans", "coco"…) opens: the folder last used for it, else the
        user's Pictures (scans) or Documents folder — never the program's own folder."""
        value = self._settings.value(f"folders/{purpose}", "")
        if value and Path(str(value)).is_dir():
            return Path(str(value))
        location = QStandardPaths.StandardLocation.PicturesLocation if purpose == "scans" \
            else QStandardPaths.StandardLocation.DocumentsLocation
        found = Path(QStandardPaths.writableLocation(location) or Path.home())
        return found if found.is_dir() else Path.home()

    def remember_folder(self, purpose: str, folder: Path) -> None:
        self._settings.setValue(f"folders/{purpose}", str(folder))

    def last_page(self, project_folder: Path) -> int | None:
        """The page (image id) last shown in a project, to reopen it there."""
        return self._project_id("last_page", project_folder)

    def set_last_page(self, project_folder: Path, image_id: int) -> None:
        self._settings.setValue(f"last_page/{_key(project_folder)}", image_id)

    def layers(self, project_folder: Path) -> str | None:
        """The canvas's layer choices for a project, as ``Layers.to_json`` wrote them."""
        value = self._settings.value(f"layers/{_key(project_folder)}")
        return value if isinstance(value, str) else None

    def set_layers(self, project_folder: Path, layers_json: str) -> None:
        self._settings.setValue(f"layers/{_key(project_folder)}", layers_json)

    def tagging_descriptions(self, project_folder: Path) -> dict[str, str]:
        """The descriptions the curator gave CLIP for zero-shot tagging, by category id (and "other")."""
        self._settings.beginGroup(f"tagging/{_key(project_folder)}")
        try:
            return {key: str(self._settings.value(key) or "") for key in self._settings.childKeys()}
        finally:
            self._settings.endGroup()

    def set_tagging_descriptions(self, project_folder: Path, descriptions: dict[str, str]) -> None:
        self._settings.beginGroup(f"tagging/{_key(project_folder)}")
        try:
            for key, text in descriptions.items():
                self._settings.setValue(key, text)
        finally:
            self._settings.endGroup()
        self._settings.sync()

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry = self._settings.value("window/geometry")
        state = self._settings.value("window/state")
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None)

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._settings.setValue("window/geometry", geometry)
        self._settings.setValue("window/state", state)
        self._settings.sync()

    def raised_docks(self) -> list[str]:
        """The docks that were in front of their tab groups (the window's state does not keep that)."""
        value = self._settings.value("window/raised_docks")
        names = value if isinstance(value, list) else [value] if isinstance(value, str) and value else []
        return [str(name) for name in names]

    def save_raised_docks(self, names: list[str]) -> None:
        self._settings.setValue("window/raised_docks", names)
        self._settings.sync()


def _key(folder: Path) -> str:
    # QSettings keys must not contain slashes from the path itself.
    return str(folder).replace("/", "|").replace("\\", "|")
