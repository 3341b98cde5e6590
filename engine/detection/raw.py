"""The detector's raw output for a page, kept on disk, and filtered at any thresholds without the model.

A page's entry holds, for each view (the whole page, then its tiles), what Grounding DINO said before any
threshold (``RawOutput``: boxes, per-query scores, per-text-position probabilities). Filtering it repeats
transformers' ``post_process_grounded_object_detection``: a query is kept when its score is above the box
threshold; its phrase is the one whose words are above the text threshold (the strongest, when several
are). Changing a threshold therefore costs milliseconds, not a model run.

Entries are keyed by the page's content (sha256 and page index), the model and its checkpoint, the phrases
and the tiling: anything else would give other boxes.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.detection.tiling import Candidates, View, WholePage
from engine.fileio import write_atomically

FORMAT = 2  # 2: "on" tiling became a few large views (the squares are "fine")


@dataclass(frozen=True)
class PageOutput:
    """What the detector said about one page: per view, boxes ``[Q, 4]`` (cx, cy, w, h in 0..1 of the
    view), scores ``[Q]``, probabilities ``[Q, L]``; ``token_phrase [L]`` maps text positions to phrases."""

    views: list[View]
    boxes: list[np.ndarray]
    scores: list[np.ndarray]
    probs: list[np.ndarray]
    token_phrase: np.ndarray


def cache_key(sha256: str, page_index: int, model_id: str, checkpoint: str, phrases: list[str], tiling: str) -> str:
    described = json.dumps([FORMAT, sha256, page_index, model_id, checkpoint, phrases, tiling])
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:32]


class RawCache:
    """``PROJECT/cache/detection/<key>.npz``; a damaged entry is treated as missing (the model runs again)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> PageOutput | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                count = int(data["view_count"])
                whole = int(data["whole_page"])
                views = [(WholePage if index == whole else View)(tuple(float(v) for v in data["views"][index]))
                         for index in range(count)]
                return PageOutput(views, [data[f"boxes_{i}"] for i in range(count)],
                                  [data[f"scores_{i}"] for i in range(count)], [data[f"probs_{i}"] for i in range(count)],
                                  data["token_phrase"])
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, output: PageOutput) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "view_count": np.array(len(output.views)), "views": np.array([v.box for v in output.views]),
            "whole_page": np.array(next(i for i, v in enumerate(output.views) if v.is_whole_page)),
            "token_phrase": output.token_phrase}
        for index in range(len(output.views)):
            arrays[f"boxes_{index}"] = output.boxes[index]
            arrays[f"scores_{index}"] = output.scores[index]
            arrays[f"probs_{index}"] = output.probs[index]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomically(self.path(key), buffer.getvalue())


def refilter(output: PageOutput, box_threshold: float, text_threshold: float) -> Candidates:
    """The boxes (page pixels) above the thresholds, each with its phrase; queries whose words are all
    below the text threshold name no phrase and are left out. Array operations throughout: a page's
    views hold thousands of queries, and a slider re-filters on every move."""
    parts: list[Candidates] = []
    named = output.token_phrase >= 0
    for view, boxes, scores, probs in zip(output.views, output.boxes, output.scores, output.probs, strict=True):
        keep = np.flatnonzero(scores > box_threshold)
        if not len(keep):
            continue
        phrases = phrases_of(probs[keep], output.token_phrase, named, text_threshold)
        page = view.place(corners_of(boxes[keep]))  # [K, 4] page pixels
        usable = (phrases >= 0) & (page[:, 2] > page[:, 0]) & (page[:, 3] > page[:, 1])
        parts.append(Candidates(page[usable], scores[keep][usable].astype(np.float64), phrases[usable]))
    return Candidates.joined(parts)


def corners_of(boxes: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) → (x0, y0, x1, y1), as transformers computes it (float32)."""
    cx, cy, w, h = (boxes[:, i].astype(np.float32) for i in range(4))
    half = np.float32(0.5)
    return np.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], axis=1)


def phrases_of(probs: np.ndarray, token_phrase: np.ndarray, named: np.ndarray, text_threshold: float) -> np.ndarray:
    """Each query's phrase (``probs [K, L]``): among its text positions above the threshold (the first and
    last excluded, as transformers does), the phrase of the strongest; -1 when none belongs to a phrase."""
    usable = (probs > text_threshold) & named[None, :]
    usable[:, 0] = False
    usable[:, -1] = False
    strongest = np.where(usable, probs, -1.0).argmax(axis=1)
    return np.where(usable.any(axis=1), token_phrase[strongest], -1).astype(np.int64)
