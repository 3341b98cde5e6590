"""Opening the Models dialog, and the first-run hint when a tool needs a model that is not installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.models.catalogue import UserSuppliedSource, get_spec
from engine.models.store import ModelStore

if TYPE_CHECKING:
    from gui.models_dialog import ModelsDialog
    from gui.notifications import NotificationArea
    from gui.power_watch import BatteryWatch
    from gui.settings import AppSettings
    from gui.workers import JobRunner


class ModelsHost(Protocol):
    """The window that owns the Models dialog (a protocol, so that tools need not import the window)."""

    jobs: JobRunner
    notifications: NotificationArea
    settings: AppSettings
    battery_watch: BatteryWatch

    def reset_model_service(self) -> None: ...


def show_models(window: ModelsHost, store: ModelStore | None = None, select: str | None = None) -> ModelsDialog:
    from gui.models_dialog import ModelsDialog  # noqa: PLC0415 - the dialog loads on demand

    dialog = ModelsDialog(store or ModelStore(), window.jobs, window.notifications, window, window.settings)
    dialog.device_choice.currentIndexChanged.connect(window.reset_model_service)
    dialog.precision_choice.currentIndexChanged.connect(window.reset_model_service)
    dialog.battery_choice.toggled.connect(window.battery_watch.check)
    dialog.setModal(False)
    if select is not None:
        dialog.select(select)
    dialog.show()
    return dialog


def missing_models(store: ModelStore, model_id: str) -> list[str]:
    """``model_id`` and what it requires, those not installed, in download order."""
    spec = get_spec(model_id)
    missing = [required for required in spec.requires if store.get(required) is None]
    return missing + ([model_id] if store.get(model_id) is None else [])


def hint_for_missing_model(parent: QWidget, store: ModelStore, model_id: str, tool: str,
                           open_models: Callable[[str], object]) -> QMessageBox | None:
    """``None`` when the model is ready; otherwise shows (without blocking) a hint that offers the Models dialog."""
    if not missing_models(store, model_id):
        return None
    spec = get_spec(model_id)
    box = QMessageBox(QMessageBox.Icon.Information, "A model is needed",
                      f"{tool} uses {spec.name}, which is not installed on this computer yet.", parent=parent)
    if isinstance(spec.source, UserSuppliedSource):
        box.setInformativeText(
            f"Marginalia cannot download it for you (there is no dependable download): get "
            f"{spec.source.where_to_get_it}. Then open Models…, choose {spec.name} and Import from file…. "
            "The model then runs here; your scans never leave this computer.")
    else:
        box.setInformativeText(
            f"It is a one-time download of about {spec.download_size / 1e6:,.0f} MB ({spec.licence} licence), "
            "shared by all your projects. The model then runs here; your scans never leave this computer. "
            "Sites without internet can import the files instead.")
    open_button = box.addButton("Open Models…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(open_button)
    open_button.clicked.connect(lambda: open_models(model_id))
    box.open()
    return box
