"""What the curator gives SAM: points (positive/negative), a box, and the previous mask to refine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.segmentation.frame import InputFrame

POSITIVE, NEGATIVE = 1, 0
_PADDING, _BOX_TOP_LEFT, _BOX_BOTTOM_RIGHT = -1, 2, 3


@dataclass(frozen=True, slots=True)
class Prompt:
    """In page pixels. ``previous`` is the last result's low-resolution logits ``[256, 256]``."""

    points: tuple[tuple[float, float, int], ...] = ()  # (x, y, POSITIVE or NEGATIVE)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    previous: np.ndarray | None = field(default=None, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None

    @property
    def ambiguous(self) -> bool:
        """A lone click may mean a letter, a word or a page: offer SAM's three candidates."""
        return len(self.points) == 1 and self.box is None

    def encoded(self, frame: InputFrame) -> tuple[np.ndarray, np.ndarray]:
        """Decoder inputs: coordinates ``[1, N, 2]`` in frame pixels and labels ``[1, N]``.

        Boxes become two corner points (labels 2, 3); without a box a padding
        point (label -1) ends the list, as SAM's prompt encoder expects.
        """
        coords = [(x, y) for x, y, _ in self.points]
        labels = [label for _, _, label in self.points]
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            coords += [(min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))]
            labels += [_BOX_TOP_LEFT, _BOX_BOTTOM_RIGHT]
        else:
            coords.append((0.0, 0.0))
            labels.append(_PADDING)
        points = frame.to_frame(np.asarray(coords, dtype=np.float32).reshape(-1, 2))
        return points[None, :, :], np.asarray(labels, dtype=np.float32)[None, :]
