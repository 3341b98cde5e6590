"""The Layers menu (View ▸ Layers, and the palette's Layers button): which annotations the page shows.

Statuses, categories and sources can each be hidden; the fill's opacity is a slider; "outline only" drops
fills and mask overlays on dense pages. Each change applies at once and is remembered for the project.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSlider, QWidget, QWidgetAction

from engine.store.types import AnnotationStatus
from gui.canvas.layers import Layers, source_of
from gui.canvas.view import ImageCanvas
from gui.labelling import LabellingController
from gui.settings import AppSettings

STATUS_NAMES = ((AnnotationStatus.PROPOSED.value, "Proposals"), (AnnotationStatus.ACCEPTED.value, "Accepted"),
                (AnnotationStatus.REJECTED.value, "Rejected"))


class LayersMenu(QMenu):
    def __init__(self, canvas: ImageCanvas, labelling: LabellingController, settings: AppSettings,
                 project_folder: Callable[[], Path | None], parent: QWidget | None = None) -> None:
        super().__init__("&Layers", parent)
        self._canvas, self._labelling, self._settings, self._folder = canvas, labelling, settings, project_folder
        self.outline_action = QAction("&Outline Only", self, checkable=True)
        self.outline_action.setShortcut("O")
        self.outline_action.setStatusTip("Only the outlines of shapes, for pages dense with annotations")
        self.outline_action.toggled.connect(lambda on: self.apply(replace(self._canvas.layers, outline_only=on)))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(100)
        self.opacity.setToolTip("How strongly shapes are filled")
        self.opacity.valueChanged.connect(
            lambda value: self.apply(replace(self._canvas.layers, opacity=value / 100)))
        self.status_actions: dict[str, QAction] = {}
        for status, text in STATUS_NAMES:
            action = self.addAction(text)
            action.setCheckable(True)
            action.toggled.connect(lambda on, status=status: self._set(on, "status", status))
            self.status_actions[status] = action
        self.addSeparator()
        self.categories = self.addMenu("&Categories")
        self.sources = self.addMenu("&Sources")
        self.addSeparator()
        self.addAction(self.outline_action)
        slider = QWidget(self)
        row = QHBoxLayout(slider)
        row.setContentsMargins(24, 2, 8, 2)
        row.addWidget(QLabel("Fill"))
        row.addWidget(self.opacity)
        holder = QWidgetAction(self)
        holder.setDefaultWidget(slider)
        self.addAction(holder)
        self.addSeparator()
        show_all = self.addAction("Show &Everything")
        show_all.triggered.connect(lambda: self.apply(Layers(statuses=frozenset(s for s, _ in STATUS_NAMES))))
        self.aboutToShow.connect(self._fill)

    def project_opened(self, folder: Path) -> None:
        self.apply(Layers.from_json(self._settings.layers(folder)), remember=False)

    def apply(self, layers: Layers, *, remember: bool = True) -> None:
        self._canvas.set_layers(layers)
        self.outline_action.blockSignals(True)
        self.outline_action.setChecked(layers.outline_only)
        self.outline_action.blockSignals(False)
        self.opacity.blockSignals(True)
        self.opacity.setValue(round(layers.opacity * 100))
        self.opacity.blockSignals(False)
        folder = self._folder()
        if remember and folder is not None:
            self._settings.set_layers(folder, layers.to_json())

    def _fill(self) -> None:
        """Bring the checks up to date, and list this project's categories and this page's sources."""
        layers = self._canvas.layers
        for status, action in self.status_actions.items():
            action.blockSignals(True)
            action.setChecked(layers.showing("status", status))
            action.blockSignals(False)
        self.categories.clear()
        for category in self._labelling.categories():
            self._toggle(self.categories, category.name, "category", category.id)
        self.sources.clear()
        known = sorted({source_of(record) for record in self._labelling.records()} | layers.hidden_sources)
        for source in known:
            self._toggle(self.sources, source, "source", source)
        if not known:
            self.sources.addAction("No annotations on this page").setEnabled(False)

    def _set(self, shown: bool, kind: str, key: str | int) -> None:
        layers = self._canvas.layers
        if shown != layers.showing(kind, key):  # only a real change flips the layer
            self.apply(layers.toggled(kind, key))

    def _toggle(self, menu: QMenu, text: str, kind: str, key: str | int) -> None:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(self._canvas.layers.showing(kind, key))
        action.toggled.connect(lambda on: self._set(on, kind, key))
