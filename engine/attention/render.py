"""Attention as a picture: a heat map in a perceptual colour map (inferno), alone or over the page."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

OVERLAY_STRENGTH = 0.6


def heat_colours(values: np.ndarray) -> np.ndarray:
    """``[h, w]`` values → ``[h, w, 3]`` uint8 RGB, low to high as inferno (black, purple, orange, yellow);
    stretched between the map's 1st and 99.5th percentile, so one hot patch does not wash the rest out."""
    low, high = np.percentile(values, 1), np.percentile(values, 99.5)
    scaled = np.clip((values - low) / (high - low if high > low else 1.0), 0, 1)
    coloured = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)


def heat_image(values_on_page: np.ndarray, page: Image.Image | None = None) -> Image.Image:
    """The heat map, or (with ``page``, of the same size) the page in grey under it."""
    colours = heat_colours(values_on_page)
    if page is None:
        return Image.fromarray(colours)
    grey = np.asarray(page.convert("L").convert("RGB"), dtype=np.float32)
    blended = (1 - OVERLAY_STRENGTH) * grey + OVERLAY_STRENGTH * colours.astype(np.float32)
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8))


def map_image(attention: object, head: str | int, *, features: bool = False,
              page: Image.Image | None = None) -> Image.Image:
    """The map as a page-sized picture: a head's heat map or (``features``, DINOv2) the feature picture,
    alone or with ``page`` in grey under it."""
    if not features:
        return heat_image(attention.on_page(attention.head(head)), page)  # type: ignore[attr-defined]
    picture = Image.fromarray((attention.pca * 255).astype(np.uint8)).resize(  # type: ignore[attr-defined]
        (attention.page_width, attention.page_height), Image.Resampling.BILINEAR)  # type: ignore[attr-defined]
    if page is None:
        return picture
    return Image.blend(page.convert("L").convert("RGB"), picture, OVERLAY_STRENGTH)
