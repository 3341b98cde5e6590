"""Segment everything: SAM's automatic mask generator on a cached embedding, as proposals to review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from engine.annotations import AnnotationRecord, Geometry, Provenance, create_annotations
from engine.errors import MarginaliaError
from engine.jobs import CancelToken, ProgressCallback, report
from engine.models.catalogue import get_spec
from engine.models.runs import recorded_run
from engine.project import Project
from engine.segmentation.embeddings import Embedding
from engine.segmentation.masks import shape_of_mask
from engine.segmentation.segmenter import PageRef, Segmenter
from engine.store.types import AnnotationStatus, SourceKind


@dataclass(frozen=True, slots=True)
class EverythingSettings:
    points_per_side: int = 32
    min_predicted_iou: float = 0.86
    min_stability: float = 0.92
    min_area_fraction: float = 0.0005  # of the page: smaller regions are specks


def _generate(network: Any, embedding: Embedding, settings: EverythingSettings,
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[dict[str, Any]]:
    """On the model's thread: the generator's masks at frame resolution, reusing the cached embedding.

    Progress is counted in prompt points tried (``points_per_side``² of them, 64 at a time), with the
    regions kept so far; ``cancel`` is checked between those batches.
    """
    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    class CachedPredictor(SamPredictor):
        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            self.reset_image()
            self.original_size = image.shape[:2]
            self.input_size = tuple(self.transform.get_preprocess_shape(
                image.shape[0], image.shape[1], self.model.image_encoder.img_size))
            self.features = torch.from_numpy(embedding.features[None]).to(self.device)
            self.is_image_set = True

    total = settings.points_per_side ** 2
    tried, kept = 0, 0

    class ReportingGenerator(SamAutomaticMaskGenerator):
        def _process_batch(self, points: np.ndarray, *args: Any, **kwargs: Any) -> Any:
            nonlocal tried, kept
            if cancel is not None:
                cancel.raise_if_cancelled()
            data = super()._process_batch(points, *args, **kwargs)
            tried += len(points)
            kept += len(data["iou_preds"])
            report(progress, tried, total, f"Looking for regions: {tried} of {total} points tried, "
                                           f"{kept} candidate region(s) so far")
            return data

    width, height = embedding.frame.size
    generator = ReportingGenerator(
        network.sam, points_per_side=settings.points_per_side, pred_iou_thresh=settings.min_predicted_iou,
        stability_score_thresh=settings.min_stability, crop_n_layers=0,
        min_mask_region_area=int(settings.min_area_fraction * width * height))
    generator.predictor = CachedPredictor(network.sam)
    with torch.inference_mode():
        # The generator reads only the image's size here: the pixels are in the embedding already.
        return generator.generate(np.zeros((height, width, 3), dtype=np.uint8))


def segment_everything(project: Project, segmenter: Segmenter, page: PageRef, *, category_id: int, creator: str,
                       session_id: int | None = None, settings: EverythingSettings = EverythingSettings(),
                       progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> list[AnnotationRecord]:
    """Every region SAM finds on the page, stored as proposals (never accepted) with their scores."""
    if not segmenter.family.segments_everything:
        raise MarginaliaError(f"Segment everything runs with the Segment Anything ViT models; "
                              f"{get_spec(segmenter.model_id).name} does not offer it yet. Choose SAM ViT-B in "
                              "the SAM tool's model list for this.")
    report(progress, 0, 0, "Preparing the page for SAM (once per page)…")
    embedding = segmenter.embedding(page, cancel=cancel)
    device = segmenter.service.device_of(segmenter.model_id)
    parameters = {"task": "segment-everything", "points_per_side": settings.points_per_side,
                  "min_predicted_iou": settings.min_predicted_iou, "min_stability": settings.min_stability}
    with recorded_run(project, segmenter.model_id, device=device, parameters=parameters,
                      model_version=embedding.key.checkpoint_sha256[:12]) as run:
        found = segmenter.service.run(segmenter.model_id,
                                      lambda network: _generate(network, embedding, settings, progress, cancel))
        geometries, origins = [], []
        for done, item in enumerate(found):
            if cancel is not None:
                cancel.raise_if_cancelled()
            report(progress, done, len(found), f"Tracing region {done + 1} of {len(found)}…")
            shape = shape_of_mask(_to_page(item["segmentation"], page))
            if shape.area == 0:
                continue
            geometries.append(Geometry(polygons=shape.polygons or None, rle=shape.rle))
            origins.append(Provenance(SourceKind.MODEL, segmenter.model_id, embedding.key.checkpoint_sha256[:12],
                                      "segment everything", min(1.0, max(0.0, float(item["predicted_iou"]))),
                                      run.id))
        run.timings["regions"] = len(geometries)
        records = create_annotations(project, image_id=page.image_id, category_id=category_id,
                                     geometries=geometries, creator=creator, provenances=origins,
                                     session_id=session_id, status=AnnotationStatus.PROPOSED) if geometries else []
    report(progress, 1, 1, f"{len(records)} regions proposed")
    return records


def _to_page(frame_mask: np.ndarray, page: PageRef) -> np.ndarray:
    scaled = cv2.resize(frame_mask.astype(np.float32), (page.width, page.height), interpolation=cv2.INTER_LINEAR)
    return scaled > 0.5
