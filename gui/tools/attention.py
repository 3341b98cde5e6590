"""The Attention tool (key H): what a DINO model attends to on the page, as a layer, and proposals from it.

Options: the model, what to show (the attention of one head, the heads' mean or max; or, for DINOv2, the
patch features' principal components as colours), the layer's opacity, the share of the attention mass
outlined (applied at once from the map already computed, no model run), Show, and Propose Regions over a
scope of pages. The layer lies on the page under the shapes and follows zoom and pan; a legend says which
model and head are shown. Maps are cached per page, so coming back to a page shows its map at once.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QImage, QPainterPath, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGraphicsPathItem, QGraphicsPixmapItem,
                               QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton, QWidget)

from gui.canvas.tools import SelectTool
from gui.elided_label import ElidedLabel
from gui.tools.scope import pages_in_scope, scope_box, start_or_ask, submit_batch
from gui.tools.seam import PaletteEntry, ToolContext, ToolOffer

REFINE_MODEL = "sam-vit-b"
MODELS = (("dino-vits8", "DINO ViT-S/8"), ("dino-vits16", "DINO ViT-S/16"), ("dinov2-reg-small", "DINOv2 small (reg)"))
LAYER_Z = 0.2  # above the page, under every shape
OUTLINE = QColor("#00E5FF")


class AttentionTool(SelectTool):
    """Selecting and moving as usual: the layer and its options are the tool's work."""

    name = "attention"
    label = "Attention"

    def status_hint(self) -> str:
        return ("Show Map lays where the model looks over the page; Propose Regions turns its brightest parts "
                "into proposals. Shapes can still be selected here.")


class AttentionOptions(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("attention-options")
        self.model = QComboBox()
        for model_id, name in MODELS:
            self.model.addItem(name, model_id)
        self.view = QComboBox()
        self.view.addItem("Attention", "attention")
        self.view.addItem("Features (PCA)", "pca")
        self.view.setToolTip("Features: the first three principal components of the patch features as colours "
                             "(DINOv2 models)")
        self.head = QComboBox()
        self.head.setToolTip("Which attention head: the heads' mean, their maximum, or one head")
        self.opacity = _slider(0, 100, 60, "How strongly the map covers the page")
        self.mass = _slider(5, 95, 60, "Outline the patches holding this share of the attention (the DINO paper: "
                                       "60 %)")
        self.mass_value = QLabel("60 %")
        # One state for the button and the Tools menu: the action (two synchronised states once re-checked each
        # other for ever when the model was missing, opening a hint each round).
        self.show_map_action = QAction("Show &Attention Map", self)
        self.show_map_action.setCheckable(True)
        self.show_map_action.setStatusTip("Show what a DINO model attends to on the page, as a layer (the "
                                          "Attention tool's map)")
        self.show_map_action.setIconText("Show Map")  # what the button says; the menu says the whole
        self.show_map = QToolButton()
        self.show_map.setDefaultAction(self.show_map_action)
        self.save = QPushButton("Save PNG…")
        self.save.setToolTip("Save the map shown as a PNG, over the page (in grey) or alone")
        self.scope = scope_box()
        self.refine = QCheckBox("SAM masks")
        self.refine.setToolTip("Refine each region into SAM's mask for its box (ViT-B), encoding each page once")
        self.propose = QPushButton("Propose Regions")
        self.propose.setToolTip("Propose the outlined regions that stand out as shapes (Salient region), on "
                                "the chosen pages")
        self.legend = ElidedLabel("")  # what room is left: on a laptop's 1280 px the controls come first
        self.legend.setObjectName("attention-legend")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        for widget in (self.model, self.view, self.head, QLabel("Opacity"), self.opacity,
                       QLabel("Mass"), self.mass, self.mass_value, self.show_map, self.save, self.scope,
                       self.refine, self.propose,
                       self.legend):
            layout.addWidget(widget)
        layout.setStretchFactor(self.legend, 1)
        self.mass.valueChanged.connect(lambda value: self.mass_value.setText(f"{value} %"))
        self.set_heads(0)

    def set_heads(self, count: int) -> None:
        current = self.head.currentData()
        self.head.blockSignals(True)
        self.head.clear()
        self.head.addItem("Mean of heads", "mean")
        self.head.addItem("Max of heads", "max")
        for index in range(count):
            self.head.addItem(f"Head {index}", index)
        position = self.head.findData(current)
        self.head.setCurrentIndex(max(position, 0))
        self.head.blockSignals(False)


def _slider(low: int, high: int, value: int, tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(low, high)
    slider.setValue(value)
    slider.setFixedWidth(60)
    slider.setToolTip(tip)
    return slider


class AttentionController:
    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.tool = AttentionTool(context.canvas.scene, lambda geometry: None)
        context.canvas.add_tool(self.tool)
        self.options = AttentionOptions()
        self.attention: Any = None  # the open page's AttentionMap
        self.shown_for: tuple[int, str] | None = None  # (page, model) of ``attention``
        self.layer: QGraphicsPixmapItem | None = None
        self.outline: QGraphicsPathItem | None = None
        self.computed = 0  # maps asked of the model or the cache (a slider move asks for none)
        self._pending: Any = None  # the map being read for a page the curator may already have left
        self.options.show_map_action.toggled.connect(self._toggled)
        self.options.model.currentIndexChanged.connect(lambda _i: self.refresh())
        for signal in (self.options.view.currentIndexChanged, self.options.head.currentIndexChanged):
            signal.connect(lambda _i: self.draw())
        self.options.opacity.valueChanged.connect(lambda _v: self._set_opacity())
        self.options.mass.valueChanged.connect(lambda _v: self.draw_outline())
        self.options.propose.clicked.connect(self.propose)
        self.options.save.clicked.connect(self.ask_save)
        context.pages.image_selected.connect(lambda _image_id: self.refresh())

    # -- the map of the open page ----------------------------------------------------------------------

    def _toggled(self, on: bool) -> None:
        if on:
            self.refresh()
        else:
            self._remove_layer()

    def refresh(self) -> None:
        """Show the open page's map (cached maps come at once; others are computed in a job)."""
        project, image_id = self.context.project(), self.context.labelling.image_id
        model_id = self.options.model.currentData()
        if not self.options.show_map_action.isChecked() or project is None or image_id is None:
            return
        if self.shown_for == (image_id, model_id) and self.attention is not None:
            self.draw()
            return
        if not self.context.model_ready(model_id, "The attention map"):
            self.options.show_map_action.setChecked(False)
            return
        row = self.context.pages.model.row_for(image_id)
        if row is None:
            return
        from engine.attention.run import attention_for  # noqa: PLC0415 - torch loads when the tool is used

        service = self.context.models()
        self.computed += 1
        if self._pending is not None:
            self._pending.cancel()  # stepping through pages: only the page in view is wanted
        self._pending = self.context.jobs.submit("Reading what stands out",
                                 lambda progress, cancel: attention_for(project, service, model_id, row)[0],
                                 lambda attention: self._arrived(image_id, model_id, attention),
                                 announce_cancel=False)

    def _arrived(self, image_id: int, model_id: str, attention: Any) -> None:
        if image_id != self.context.labelling.image_id or not self.options.show_map_action.isChecked():
            return  # the curator moved on, or hid the map
        self.attention, self.shown_for = attention, (image_id, model_id)
        self.options.set_heads(len(attention.heads))
        self.draw()

    def draw(self) -> None:
        attention = self.attention
        if attention is None or self.shown_for is None or self.shown_for[0] != self.context.labelling.image_id:
            return
        from engine.attention.render import heat_colours  # noqa: PLC0415

        pca = self.options.view.currentData() == "pca"
        if pca and attention.pca is None:
            self.context.show_status("This model has no feature picture: choose a DINOv2 model (with registers).",
                                     4000)
            pca = False
        colours = (attention.pca * 255).astype(np.uint8) if pca else heat_colours(self._values())
        height, width = colours.shape[:2]
        image = QImage(np.ascontiguousarray(colours).data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        layer = self._layer()
        layer.setPixmap(QPixmap.fromImage(image))
        layer.setTransform(QTransform.fromScale(attention.page_width / width, attention.page_height / height))
        self._set_opacity()
        self.draw_outline()
        head = self.options.head.currentText().lower() if not pca else "features (PCA)"
        self.options.legend.setText(f"{self.options.model.currentText()} · {head}")

    def _head(self) -> str | int:
        """The head chosen: "mean", "max" or its number (0 is a head, not "none chosen")."""
        chosen = self.options.head.currentData()
        return "mean" if chosen is None else chosen

    def _values(self) -> np.ndarray:
        return self.attention.head(self._head())

    def draw_outline(self) -> None:
        """The patches holding the chosen share of the mass, outlined (from the map in hand: no model run)."""
        if self.attention is None or self.layer is None or not shiboken6.isValid(self.layer):
            return
        from engine.attention.maps import keep_mass  # noqa: PLC0415

        kept = keep_mass(self._values(), self.options.mass.value() / 100).astype(np.uint8)
        gh, gw = kept.shape
        scale = 4  # patch edges as crisp corners
        contours, _ = cv2.findContours(cv2.resize(kept, (gw * scale, gh * scale), interpolation=cv2.INTER_NEAREST),
                                       cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = self.attention.page_width / (gw * scale), self.attention.page_height / (gh * scale)
        path = QPainterPath()
        for contour in contours:
            points = contour.reshape(-1, 2)
            path.moveTo(points[0][0] * sx, points[0][1] * sy)
            for x, y in points[1:]:
                path.lineTo(x * sx, y * sy)
            path.closeSubpath()
        if self.outline is None or not shiboken6.isValid(self.outline):
            self.outline = QGraphicsPathItem()
            pen = QPen(OUTLINE, 2)
            pen.setCosmetic(True)
            self.outline.setPen(pen)
            self.outline.setZValue(LAYER_Z + 0.01)
            self.context.canvas.scene().addItem(self.outline)
        self.outline.setPath(path)

    def _layer(self) -> QGraphicsPixmapItem:
        if self.layer is None or not shiboken6.isValid(self.layer) or self.layer.scene() is None:
            self.layer = QGraphicsPixmapItem()
            self.layer.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self.layer.setZValue(LAYER_Z)
            self.layer.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            self.context.canvas.scene().addItem(self.layer)
        return self.layer

    def _set_opacity(self) -> None:
        if self.layer is not None and shiboken6.isValid(self.layer):
            self.layer.setOpacity(self.options.opacity.value() / 100)

    def _remove_layer(self) -> None:
        for item in (self.layer, self.outline):
            if item is not None and shiboken6.isValid(item) and item.scene() is not None:
                item.scene().removeItem(item)
        self.layer = self.outline = None
        self.options.legend.setText("")

    # -- the map as a picture --------------------------------------------------------------------------

    def ask_save(self) -> None:
        if self.attention is None:
            self.context.notifications.info("Show the map first (Show Map), then save it.")
            return
        path, chosen = QFileDialog.getSaveFileName(self.context.parent, "Save the attention map",
                                                   str(self.context.settings.start_folder("attention") /
                                                       "attention.png"),
                                                   "Over the page (PNG) (*.png);;The map alone (PNG) (*.png)")
        if path:
            self.context.settings.remember_folder("attention", Path(path).parent)
            self.save_png(Path(path), over_page=chosen.startswith("Over"))

    def save_png(self, path: Path, *, over_page: bool = True) -> None:
        """The map as shown (head or features), at the page's size, written in a job."""
        row = self.context.pages.model.row_for(self.shown_for[0]) if self.shown_for is not None else None
        if self.attention is None or row is None:
            return
        from engine.attention.render import map_image  # noqa: PLC0415
        from engine.fileio import write_atomically  # noqa: PLC0415
        from engine.imaging.isolated import load_page_isolated  # noqa: PLC0415

        attention, head = self.attention, self._head()
        pca = self.options.view.currentData() == "pca" and attention.pca is not None

        def write(progress: object, cancel: object) -> Path:
            page = load_page_isolated(Path(row.path), row.page_index, image_format=row.format) if over_page else None
            picture = map_image(attention, head, features=pca, page=page)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            write_atomically(path, buffer.getvalue())
            return path

        self.context.jobs.submit("Saving the attention map", write,
                                 lambda written: self.context.show_status(f"Saved {written.name}", 4000))

    # -- proposals -------------------------------------------------------------------------------------

    def propose(self) -> None:
        project = self.context.project()
        model_id = self.options.model.currentData()
        pages = pages_in_scope(self.context, self.options.scope.currentData())
        if project is None or not pages or not self.context.model_ready(model_id, "Proposing regions"):
            return
        from engine.attention.run import DiscoverOptions  # noqa: PLC0415
        from engine.batch.tasks.discover import DiscoverTask  # noqa: PLC0415

        options = DiscoverOptions(head=self._head(), share=self.options.mass.value() / 100)
        service, creator = self.context.models(), self.context.curator()
        refine = None
        if self.options.refine.isChecked():
            if not self.context.model_ready(REFINE_MODEL, "Refining regions with SAM"):
                return
            from engine.segmentation.embeddings import EmbeddingCache  # noqa: PLC0415
            from engine.segmentation.segmenter import Segmenter  # noqa: PLC0415

            disk_bytes = int(self.context.settings.sam_cache_gb * 1024**3)  # the SAM tool's own bound
            refine = Segmenter(service, EmbeddingCache.of_project(project.folder, disk_bytes=disk_bytes), REFINE_MODEL)
        task = DiscoverTask(model_id, options, creator, refine=refine)

        def start(cluster: Any, took: str) -> None:
            if not self.options.propose.isEnabled() or project is not self.context.project():
                return  # running already, or another project by now
            self.options.propose.setEnabled(False)
            submit_batch(self.context, f"Proposing what stands out on {len(pages)} page(s)", task, service, pages,
                         cluster, took, lambda report: self._proposed(project, report),
                         lambda: self.options.propose.setEnabled(True))

        # SAM refines here, so a refining run stays here
        start_or_ask(self.context, "Propose regions", task, service, pages, start,
                     cluster_allowed=refine is None)

    def _proposed(self, project: Any, report: Any) -> None:
        if project is self.context.project():
            self.context.announce_annotations_changed()
            self.context.notifications.result(f"Attention: {report.summary}.")


class AttentionPlugin:
    name = "attention"

    def __init__(self, context: ToolContext) -> None:
        self.controller = AttentionController(context)

    def offer(self) -> ToolOffer:
        return ToolOffer(palette=[PaletteEntry(self.controller.tool, "Attention &Heat Map", "H", "attention")],
                         options=self.controller.options,
                         menu=[("attention-layer", self.controller.options.show_map_action)])

    def project_closed(self) -> None:
        self.controller.attention = self.controller.shown_for = None
        self.controller.options.show_map_action.setChecked(False)


def create(context: ToolContext) -> AttentionPlugin:
    return AttentionPlugin(context)
