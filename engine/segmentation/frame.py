"""SAM's input frame: a page scaled so its longer side is the model's input side (1024) — or, for SAM 2,
stretched to the whole square, as SAM 2 was trained (``stretch``).

Prompts come in page pixels (full resolution) and go into the frame; masks come
out of the decoder as low-resolution logits ``[256, 256]`` over the padded
``[1024, 1024]`` frame and go back to page pixels the way segment-anything does
it (bilinear to the padded frame, crop the padding, bilinear to the page),
so that the same prompt gives the same mask as ``SamPredictor``.
"""

from __future__ import annotations

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
        """The ``[page_height, page_width]`` boolean mask at full resolution."""
        import cv2

        logits = cv2.resize(self.logits_in_frame(low_res), (self.page_width, self.page_height),
                            interpolation=cv2.INTER_LINEAR)
        return logits > 0.0

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
