"""SAM results as annotations: exact RLE + editable polygons, with the model and prompt recorded."""

from __future__ import annotations

import json

import numpy as np

from engine.annotations import AnnotationRecord, Geometry, Provenance, create_annotation
from engine.project import Project
from engine.segmentation.masks import shape_of_mask
from engine.segmentation.embeddings import Embedding
from engine.segmentation.prompts import Prompt
from engine.segmentation.segmenter import Segmentation, Segmenter
from engine.store.types import AnnotationStatus, SourceKind


def describe_prompt(segmentation: Segmentation) -> str:
    """The prompt in page pixels, as provenance (JSON)."""
    prompt = segmentation.prompt
    return json.dumps({"points": [[round(x, 1), round(y, 1), label] for x, y, label in prompt.points],
                       "box": [round(v, 1) for v in prompt.box] if prompt.box else None,
                       "refined": prompt.previous is not None, "candidate": segmentation.index})


def provenance_of(segmentation: Segmentation, model_run_id: int | None = None) -> Provenance:
    """The model, checkpoint, prompt and confidence behind a mask."""
    key = segmentation.embedding.key
    return Provenance(SourceKind.MODEL, key.model_id, key.checkpoint_sha256[:12], describe_prompt(segmentation),
                      min(1.0, max(0.0, segmentation.score)), model_run_id)


def geometry_of(segmentation: Segmentation) -> Geometry:
    """The mask at full resolution: exact RLE plus polygons for editing (slow on big pages: not on the UI thread)."""
    shape = shape_of_mask(segmentation.page_mask())
    return Geometry(polygons=shape.polygons or None, rle=shape.rle)


def save_segmentation(project: Project, segmentation: Segmentation, *, image_id: int, category_id: int,
                      creator: str, session_id: int | None, model_run_id: int | None = None) -> AnnotationRecord:
    """The curator accepted the mask: store it at full resolution (RLE) with its polygons."""
    return create_annotation(project, image_id=image_id, category_id=category_id, geometry=geometry_of(segmentation),
                             creator=creator, session_id=session_id, status=AnnotationStatus.ACCEPTED,
                             provenance=provenance_of(segmentation, model_run_id))


def mask_in_box(segmenter: Segmenter, embedding: Embedding, box: tuple[float, float, float, float]) -> Geometry | None:
    """SAM's mask for a box prompt (page pixels), cut to the box: exact RLE plus polygons; ``None`` when SAM
    finds nothing inside the box (the caller keeps its own shape then)."""
    mask = segmenter.segment(embedding, Prompt(box=box)).page_mask()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = np.zeros_like(mask)
    inside[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    if not inside.any():
        return None
    found = shape_of_mask(inside)
    return Geometry(polygons=found.polygons or None, rle=found.rle)
