"""SAM's input frame: a page scaled so its longer side is the model's input side (1024) — or, for SAM 2,
stretched to the whole square, as SAM 2 was trained (``stretch``).

Prompts come in page pixels (full resolution) and go into the frame; masks come
out of the decoder as low-resolution logits ``[256, 256]`` over the padded
``[1024, 1024]`` frame and go back to page pixels the way segment-anything does
it (bilinear to the padded frame, crop the padding, bilinear to the page),
so that the same prompt gives the same mask as ``SamPredictor``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class InputFrame:
    page_width: int
    page_height: int
    side: int = 1024  # the encoder's input side
    stretch: bool = False  # SAM 2: each axis scaled to the side (no padding)

    @property
    def scale(self) -> float:
        """Frame pixels per page pixel (along the longer side when stretched)."""
        return self.side / max(self.page_width, self.page_height)

    @property
    def scales(self) -> tuple[float, float]:
        """Frame pixels per page pixel along x and y."""
        if self.stretch:
            return self.side / self.page_width, self.side / self.page_height
        return self.scale, self.scale

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the page inside the frame, as segment-anything rounds it."""
        if self.stretch:
            return self.side, self.side
        return (int(self.page_width * self.scale + 0.5), int(self.page_height * self.scale + 0.5))

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """``[N, 2]`` page pixels (x, y) → frame pixels, per axis as ``ResizeLongestSide`` does."""
        width, height = self.size
        factors = np.array([width / self.page_width, height / self.page_height], dtype=np.float32)
        return points.astype(np.float32) * factors

    def logits_in_frame(self, low_res: np.ndarray) -> np.ndarray:
        """``[256, 256]`` logits → ``[h, w]`` logits over the page inside the frame (h, w ≤ side)."""
        import cv2

        padded = cv2.resize(low_res.astype(np.float32), (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        width, height = self.size
        return padded[:height, :width]

    def mask_in_frame(self, low_res: np.ndarray) -> np.ndarray:
        """A ``[h, w]`` boolean mask at frame resolution: cheap, for showing while the curator clicks."""
        return self.logits_in_frame(low_res) > 0.0

    def mask_on_page(self, low_res: np.ndarray) -> np.ndarray:
        """The ``[page_height, page_width]`` boolean mask at full resolution: where the frame's logits, bilinearly
        interpolated as OpenCV's resize does it, are above zero.

        A mask of a small part of a large page is interpolated over its own box only (one frame pixel more each
        side: what bilinear reads); otherwise OpenCV resizes the whole page into a buffer kept for the next
        click (``_RESIZED``)."""
        frame_logits = self.logits_in_frame(low_res)
        size = (self.page_height, self.page_width)
        if self.page_width * self.page_height <= SMALL_PAGE * self.side * self.side:
            return _RESIZED.above_zero(frame_logits, size)
        positive = frame_logits > 0.0
        rows, columns = np.nonzero(positive.any(axis=1))[0], np.nonzero(positive.any(axis=0))[0]
        if not len(rows):
            return np.zeros(size, bool)
        top, bottom = _page_span(rows[0], rows[-1], frame_logits.shape[0], self.page_height)
        left, right = _page_span(columns[0], columns[-1], frame_logits.shape[1], self.page_width)
        if (bottom - top) * (right - left) > REGION_PIXELS:
            return _RESIZED.above_zero(frame_logits, size)
        page = np.zeros(size, bool)
        page[top:bottom, left:right] = _bilinear(frame_logits, (top, bottom), (left, right), size) > 0.0
        return page

    def low_res_from_window(self, window: np.ndarray, left: int, top: int, strength: float = 8.0) -> np.ndarray:
        """``[256, 256]`` logits for a page mask known inside a window at (left, top): a stored mask given
        to SAM as the previous mask, so clicks refine it instead of starting anew."""
        import cv2

        low_side = self.side // 4
        to_low_x, to_low_y = (scale / 4 for scale in self.scales)  # page pixels → low-resolution pixels
        low = np.zeros((low_side, low_side), dtype=np.float32)
        height, width = window.shape
        x0, y0 = int(round(left * to_low_x)), int(round(top * to_low_y))
        w, h = max(1, int(round(width * to_low_x))), max(1, int(round(height * to_low_y)))
        w, h = min(w, low_side - x0), min(h, low_side - y0)
        if w > 0 and h > 0:
            low[y0:y0 + h, x0:x0 + w] = cv2.resize(window.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        return (low * 2.0 - 1.0) * strength


SMALL_PAGE = 4  # pages up to this many frames' pixels are resized whole
REGION_PIXELS = 500_000  # a mask's box above this many page pixels: the whole page resized is faster
KEPT_BUFFER_BYTES = 64 << 20  # pages up to 16 megapixels are resized into a kept buffer


class _ResizeBuffer:
    """One float32 page-sized buffer for the logits resized to the page, kept between clicks: a new one costs its
    first-touch page faults each time (37 MB for the SBB scan: half of the resize's 8–10 ms here)."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None
        self._lock = threading.Lock()

    def above_zero(self, source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """``source [h, w]`` float32 resized bilinearly to ``size`` (height, width) → where it is above zero."""
        import cv2

        height, width = size
        if height * width * 4 > KEPT_BUFFER_BYTES:
            return cv2.resize(source, (width, height), interpolation=cv2.INTER_LINEAR) > 0.0
        with self._lock:
            if self._buffer is None or self._buffer.shape != size:
                self._buffer = np.empty(size, np.float32)
            return cv2.resize(source, (width, height), dst=self._buffer, interpolation=cv2.INTER_LINEAR) > 0.0


_RESIZED = _ResizeBuffer()


def _page_span(first: int, last: int, source: int, target: int) -> tuple[int, int]:
    """The page pixels (start, end) whose bilinear sources include frame pixels ``first``…``last`` (with one
    pixel more each side, and one page pixel of slack)."""
    scale = source / target
    start = int(np.floor((max(first - 1, 0) + 0.5) / scale - 0.5)) - 1
    end = int(np.ceil((min(last + 1, source - 1) + 0.5) / scale - 0.5)) + 2
    return max(start, 0), min(end, target)


def _bilinear(source: np.ndarray, rows: tuple[int, int], columns: tuple[int, int],
              size: tuple[int, int]) -> np.ndarray:
    """Rows ``rows`` and columns ``columns`` of ``source`` ``[h, w]`` float32 resized to ``size`` (height, width)
    as ``cv2.resize(…, INTER_LINEAR)`` computes them (its weights, columns first, then rows; the last float bit
    may differ, as OpenCV's vector code rounds its own way): sources at (d + 0.5)·scale − 0.5, clamped at the
    edges."""
    (ys, wy), (xs, wx) = (_weights(*rows, source.shape[0], size[0]), _weights(*columns, source.shape[1], size[1]))
    below = np.minimum(ys + 1, source.shape[0] - 1)
    band = source[ys[0]:below[-1] + 1]  # the source rows read, in one piece
    across = band[:, xs] * (1 - wx) + band[:, np.minimum(xs + 1, source.shape[1] - 1)] * wx
    return across[ys - ys[0]] * (1 - wy)[:, None] + across[below - ys[0]] * wy[:, None]


def _weights(start: int, end: int, source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """For target pixels ``start``…``end - 1``: the first source pixel and the second one's weight (float32)."""
    position = ((np.arange(start, end, dtype=np.float64) + 0.5) * (source / target) - 0.5).astype(np.float32)
    first = np.floor(position).astype(int)
    weight = (position - first).astype(np.float32)
    low, high = first < 0, first >= source - 1
    first[low], weight[low] = 0, 0.0
    first[high], weight[high] = source - 1, 0.0
    return first, weight
