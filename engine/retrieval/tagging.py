"""Zero-shot tagging: CLIP picks, for each page, which of the curator's categories it shows; as proposals.

Each category is described by a prompt ("a page with a coat of arms"); a page's
probabilities over the categories are CLIP's softmax of its scaled cosine
similarities. When the best category passes the threshold, the page gets a
whole-page proposal in that category, with the probability as its score, for
the curator to accept or reject. Running it again adds no duplicates.

CLIP always picks one of the prompts it is given, so "other" descriptions
("a page of plain text") give pages that show none of the categories somewhere
to go: a page whose best match is one of them gets no proposal.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from engine.annotations import AnnotationRecord, Geometry, Provenance, create_annotations
from engine.errors import MarginaliaError
from engine.models.runs import recorded_run
from engine.models.service import ModelService
from engine.project import Project
from engine.retrieval.search import embed_texts
from engine.retrieval.vectors import unpack
from engine.store.schema import Annotation, Image, Vector
from engine.store.types import AnnotationStatus, SourceKind


def page_probabilities(page_vectors: np.ndarray, prompt_vectors: np.ndarray, logit_scale: float) -> np.ndarray:
    """``[N, D]`` pages × ``[C, D]`` prompts → ``[N, C]`` probabilities (rows sum to one)."""
    logits = logit_scale * page_vectors @ prompt_vectors.T
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def tag_pages(project: Project, service: ModelService, model_id: str, prompts: dict[int, str], *,
              creator: str, min_probability: float = 0.5, session_id: int | None = None,
              within: set[int] | None = None, others: tuple[str, ...] = ()) -> list[AnnotationRecord]:
    """Whole-page proposals for the pages whose likeliest category (of ``prompts``) passes ``min_probability``.

    ``within`` limits the pages (e.g. to those the gallery shows); ``None`` means every indexed page.
    ``others`` describe what pages show when none of the categories; they compete but propose nothing.
    """
    categories = list(prompts)
    texts = [prompts[category].strip() for category in categories]
    other_texts = [text.strip() for text in others if text.strip()]
    if not categories or len(texts) + len(other_texts) < 2:
        raise MarginaliaError("Give at least two descriptions (categories, or a category and an 'other'): "
                              "CLIP chooses between them.")
    if not all(texts):
        raise MarginaliaError("Every category needs a description for CLIP, e.g. 'a page with a coat of arms'.")
    prompt_vectors = embed_texts(service, model_id, texts + other_texts)
    scale = service.run(model_id, lambda network: network.logit_scale)
    with project.unit_of_work() as session:
        rows = session.execute(select(Vector.image_id, Vector.data, Image.width, Image.height)
                               .join(Image, Image.id == Vector.image_id)
                               .where(Vector.model_id == model_id, Vector.annotation_id.is_(None))).all()
        proposed = {(image_id, category_id) for image_id, category_id in session.execute(
            select(Annotation.image_id, Annotation.category_id).where(
                Annotation.source_model == model_id, Annotation.prompt.like("zero-shot:%")))}
    if within is not None:
        rows = [row for row in rows if row[0] in within]
    if not rows:
        raise MarginaliaError("Index these pages for search first: tagging uses the pages' search vectors.")
    probabilities = page_probabilities(np.stack([unpack(row[1]) for row in rows]), prompt_vectors, scale)
    records: list[AnnotationRecord] = []
    with recorded_run(project, model_id, device=service.device_of(model_id),
                      parameters={"task": "zero-shot", "prompts": texts, "others": other_texts,
                                  "min_probability": min_probability}) as run:
        for (image_id, _, width, height), row in zip(rows, probabilities, strict=True):
            best = int(np.argmax(row))
            if best >= len(categories):
                continue  # the page looks like none of the categories
            category = categories[best]
            if row[best] < min_probability or (image_id, category) in proposed:
                continue
            origin = Provenance(SourceKind.MODEL, model_id, "", f"zero-shot: {texts[best]}", float(row[best]), run.id)
            records += create_annotations(project, image_id=image_id, category_id=category,
                                          geometries=[Geometry(bbox=(0.0, 0.0, float(width), float(height)))],
                                          creator=creator, provenances=[origin], session_id=session_id,
                                          status=AnnotationStatus.PROPOSED)
        run.timings["proposals"] = len(records)
    return records
