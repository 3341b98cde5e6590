"""The segmenter: a page's embedding (cached, or encoded on the model's thread) and prompts decoded against it.

Encoding a page is the slow part (seconds on a GPU, tens of seconds on a
laptop CPU) and happens once per page and model; decoding a click takes
milliseconds. Pages are decoded straight to SAM's input size (reduced
decoding where the format allows), never at full resolution.
"""

from __future__ import annotations

import functools

import logging
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.errors import MarginaliaError
from engine.imaging.isolated import load_page_isolated
from engine.jobs import CancelToken
from engine.models.precision import autocast
from engine.models.service import ModelService
from engine.segmentation.decoder import Decoded, PromptDecoder
from engine.segmentation.families import family_of
from engine.segmentation.embeddings import Embedding, EmbeddingCache, EmbeddingKey, as_stored
from engine.segmentation.frame import InputFrame
from engine.segmentation.prompts import Prompt

log = logging.getLogger(__name__)
ENCODER_SIDE = 1024


@dataclass(frozen=True, slots=True)
class PageRef:
    """The page to segment: where its pixels are and what they are (size as displayed)."""

    image_id: int
    path: Path
    page_index: int
    sha256: str
    width: int
    height: int
    format: str | None = None

    @classmethod
    def of(cls, row: Any) -> PageRef:
        """From an ``ImageRow`` or an ``Image`` row."""
        return cls(row.id, Path(row.path), row.page_index, row.sha256, row.width, row.height, row.format)


@dataclass(frozen=True, slots=True)
class Segmentation:
    """One decoded prompt: SAM's candidates and the one chosen."""

    embedding: Embedding
    prompt: Prompt
    decoded: Decoded
    index: int

    @property
    def low_res(self) -> np.ndarray:
        """``[256, 256]`` logits of the chosen mask (feed back as ``Prompt.previous`` to refine)."""
        return self.decoded.logits(self.index)

    @property
    def score(self) -> float:
        return float(self.decoded.scores[self.index])

    def preview_mask(self) -> np.ndarray:
        """Boolean ``[h, w]`` at SAM's frame resolution (≤ 1024 a side): fast, for display."""
        return self.embedding.frame.mask_in_frame(self.low_res)

    def page_mask(self) -> np.ndarray:
        """Boolean ``[height, width]`` at the page's full resolution."""
        return self.embedding.frame.mask_on_page(self.low_res)

    def alternatives(self) -> list[int]:
        return self.decoded.candidates(self.prompt)

    def choose(self, index: int) -> Segmentation:
        return Segmentation(self.embedding, self.prompt, self.decoded, index)


def frame_pixels(page: PageRef, side: int = ENCODER_SIDE, *, stretch: bool = False) -> np.ndarray:
    """The page at SAM's input size, ``[h, w, 3]`` uint8 RGB, decoded in a worker process."""
    frame = InputFrame(page.width, page.height, side, stretch)
    image = load_page_isolated(page.path, page.page_index, max_side=side, image_format=page.format)
    if image.size != frame.size:
        image = image.resize(frame.size, Image.Resampling.BILINEAR)
    return np.array(image.convert("RGB"))  # writable: torch will share it


def encode_batch(network: Any, images: Sequence[np.ndarray], cancel: CancelToken | None = None) -> list[np.ndarray]:
    """Frame images ``[h, w, 3]`` uint8 → embeddings ``[C, 64, 64]``; on the model's thread.

    ``cancel`` is checked between the encoder's transformer blocks (about half a
    second each for ViT-B on a laptop CPU), so a cancelled page stops within a second.
    """
    import torch

    sam = network.sam
    batch = torch.cat([sam.preprocess(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
                                      .to(network.device, torch.float32)) for image in images])
    with torch.inference_mode(), autocast(network.device, network.encoder_dtype):
        features = _encode_in_steps(sam.image_encoder, batch, cancel)
    return [as_stored(item) for item in features.float().cpu().numpy()]


def _encode_in_steps(encoder: Any, batch: Any, cancel: CancelToken | None) -> Any:
    """segment-anything's ``ImageEncoderViT.forward``, one block at a time: ``[B, 3, 1024, 1024]`` →
    ``[B, 256, 64, 64]`` (tests compare it with the encoder's own forward)."""
    x = encoder.patch_embed(batch)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for block in encoder.blocks:
        if cancel is not None:
            cancel.raise_if_cancelled()
        x = block(x)
    return encoder.neck(x.permute(0, 3, 1, 2))


class Segmenter:
    def __init__(self, service: ModelService, cache: EmbeddingCache, model_id: str, *,
                 prefer_onnx: bool = True) -> None:
        self.service = service
        self.cache = cache
        self.model_id = model_id
        self.prefer_onnx = prefer_onnx
        self.family = family_of(model_id)
        self._decoder: PromptDecoder | None = None
        self._decoder_lock = threading.Lock()
        self._encode_seconds: list[float] = []
        self._checkpoint: str | None = None
        self.notice = ""

    # -- embeddings ------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The weights' sha256 (read once from the store's manifest; every cache key uses it)."""
        if self._checkpoint is None:
            self._checkpoint = self.service.store.require(self.model_id).weights_sha256()
        return self._checkpoint

    def key_for(self, page: PageRef) -> EmbeddingKey:
        return EmbeddingKey(page.sha256, page.page_index, self.model_id, self.checkpoint(),
                            self.service.precision_of(self.model_id))

    def has_embedding(self, page: PageRef) -> bool:
        return self.key_for(page) in self.cache

    def embedding(self, page: PageRef, cancel: CancelToken | None = None) -> Embedding:
        """The page's embedding: from the cache, or encoded now (slow; call off the UI thread)."""
        key = self.key_for(page)
        held = self.cache.get(key)
        if held is not None:
            return held
        return self.encode_pages([page], cancel=cancel)[0]

    def encode_pages(self, pages: Sequence[PageRef], *, batch_size: int = 1,
                     cancel: CancelToken | None = None) -> list[Embedding]:
        """Encode ``pages`` (batched; smaller batches or the CPU when a GPU runs out of memory) and cache them."""
        images = []
        for page in pages:
            if cancel is not None:
                cancel.raise_if_cancelled()
            images.append(self.frame_pixels(page))
        return self.encode_images(pages, images, batch_size=batch_size, cancel=cancel)

    def frame_pixels(self, page: PageRef) -> np.ndarray:
        """The page as this model's encoder takes it (see :func:`frame_pixels`)."""
        return frame_pixels(page, stretch=self.family.stretch)

    def frame_of(self, page: PageRef) -> InputFrame:
        return InputFrame(page.width, page.height, ENCODER_SIDE, self.family.stretch)

    def encode_images(self, pages: Sequence[PageRef], images: Sequence[np.ndarray], *,
                      batch_size: int = 1, cancel: CancelToken | None = None) -> list[Embedding]:
        """Encode already decoded frame images (see :func:`frame_pixels`) of ``pages`` and cache them."""
        keys = [self.key_for(page) for page in pages]
        started = time.perf_counter()
        encoded = self.service.run_batches(self.model_id, images,
                                           functools.partial(self.family.encode, cancel=cancel), batch_size=batch_size)
        self._encode_seconds.append((time.perf_counter() - started) / len(pages))
        embeddings = [Embedding(key, features, self.frame_of(page), extras)
                      for key, (features, extras), page in zip(keys, encoded, pages, strict=True)]
        for embedding in embeddings:
            self.cache.put(embedding)
        return embeddings

    def keep_encoded(self, page: PageRef, features: Any, extras: Any, precision: str) -> Embedding:
        """An embedding encoded elsewhere (a cluster's worker, at its own precision), cached as one made here."""
        key = EmbeddingKey(page.sha256, page.page_index, self.model_id, self.checkpoint(), precision)
        embedding = Embedding(key, features, self.frame_of(page), extras)
        self.cache.put(embedding)
        return embedding

    def seconds_per_page(self) -> float | None:
        """The typical encoding time measured in this session, ``None`` before the first."""
        recent = self._encode_seconds[-5:]
        return statistics.median(recent) if recent else None

    # -- prompts ---------------------------------------------------------------------

    def decoder(self) -> PromptDecoder:
        """ONNX Runtime when possible (exported once, kept next to the weights), else torch."""
        with self._decoder_lock:
            if self._decoder is None:
                self._decoder = self._make_decoder()
            return self._decoder

    def _make_decoder(self) -> PromptDecoder:
        graphs = self.service.run(self.model_id, self.family.graphs)
        if self.prefer_onnx:
            try:
                folder = self.service.store.require(self.model_id).folder
                return self.family.onnx_decoder(graphs, folder, self.checkpoint())
            except Exception as error:  # noqa: BLE001 - any exporter or runtime fault: torch still works
                log.warning("ONNX prompt decoding unavailable, using torch: %s", error)
                self.notice = "Fast mask decoding is unavailable here; using the slower path."
        return self.family.torch_decoder(graphs)

    def segment(self, embedding: Embedding, prompt: Prompt) -> Segmentation:
        if prompt.is_empty:
            raise MarginaliaError("Click on the page or drag a box to segment.")
        points, labels = prompt.encoded(embedding.frame)
        decoded = self.decoder().decode(embedding, prompt, points, labels)
        return Segmentation(embedding, prompt, decoded, decoded.best(prompt))
