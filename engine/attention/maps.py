"""Attention maps of a page: the last layer's class-token attention of a DINO ViT, per head.

The page is resized so that its longer side holds ``patches`` patches (112 by default: 896 px for /8
models, 1792 px for /16), each side a whole number of patches, so that the patch grid covers the page
exactly: patch (i, j) is the page rectangle ``[j·W/gw, (j+1)·W/gw) × [i·H/gh, (i+1)·H/gh)``. Maps are kept
at patch resolution (``[heads, gh, gw]``, each head summing to 1 over the patches) and drawn on the page
from there. For DINOv2 with registers, the first three principal components of the patch features give
the usual RGB feature picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

DEFAULT_PATCHES = 112
DEFAULT_MASS = 0.6  # the DINO paper's "keep 60 % of the attention mass"


@dataclass(frozen=True)
class AttentionMap:
    """``heads [H, gh, gw]`` float32 (each head sums to 1), the page size the grid covers, and, for models with
    registers, ``pca [gh, gw, 3]`` in 0..1."""

    heads: np.ndarray
    page_width: int
    page_height: int
    pca: np.ndarray | None = None

    @property
    def grid(self) -> tuple[int, int]:
        """(gh, gw)."""
        return self.heads.shape[1], self.heads.shape[2]

    def head(self, which: str | int = "mean") -> np.ndarray:
        """One head's map ``[gh, gw]``, or the heads' ``"mean"`` or ``"max"``."""
        if which == "mean":
            return self.heads.mean(axis=0)
        if which == "max":
            return self.heads.max(axis=0)
        index = int(which)
        if not 0 <= index < len(self.heads):
            raise ValueError(f"the model has heads 0 to {len(self.heads) - 1}, not {index}")
        return self.heads[index]

    def on_page(self, grid_values: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
        """A patch-grid map ``[gh, gw]`` drawn over the page (or a ``width``×``height`` picture of it), each
        patch's value at its rectangle's centre and smoothly between (bilinear)."""
        return cv2.resize(grid_values.astype(np.float32), (width or self.page_width, height or self.page_height),
                          interpolation=cv2.INTER_LINEAR)


def patch_grid(width: int, height: int, patch: int, patches: int = DEFAULT_PATCHES) -> tuple[int, int]:
    """(gw, gh): patches across and down for a page of ``width``×``height`` whose longer side holds
    ``patches`` patches (each side at least one)."""
    scale = patches / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def attention_of(network: Any, page: Image.Image, patches: int = DEFAULT_PATCHES,
                 tile: int = DEFAULT_PATCHES) -> AttentionMap:
    """The page's attention maps. ``network``: a loaded DINO (``DinoNetwork``).

    Above ``tile`` patches a side (a higher resolution asked for), the patch grid is read in tiles of
    ``tile`` patches overlapping by a quarter: each tile's attention, taken relative to an even spread over
    its own patches, is put in place and averaged where tiles overlap, then each head is normalised again.
    (A tile's class token sees only its tile, so a tiled map is a close reading of each part, not the
    untiled map.)
    """
    gw, gh = patch_grid(page.width, page.height, network.patch_size, patches)
    pixels = _pixels(network, page, gw, gh)  # [1, 3, gh·p, gw·p]
    if max(gw, gh) <= tile:
        maps, tokens = network.attention_and_tokens(pixels)  # one pass of the model for both
        heads = maps[0].cpu().numpy().astype(np.float32)  # [H, gh, gw]
        features = tokens[0, 1 + network.register_tokens:].cpu().numpy() if network.register_tokens else None
    else:
        heads, features = _tiled(network, pixels, gw, gh, tile)
    heads /= np.maximum(heads.sum(axis=(1, 2), keepdims=True), 1e-12)
    pca = pca_rgb(features, gh, gw) if features is not None else None
    return AttentionMap(heads, page.width, page.height, pca)


def _pixels(network: Any, page: Image.Image, gw: int, gh: int) -> Any:
    import torch

    resized = page.convert("RGB").resize((gw * network.patch_size, gh * network.patch_size), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(network.mean).view(3, 1, 1)
    std = torch.tensor(network.std).view(3, 1, 1)
    return ((pixels - mean) / std)[None]


def _tiled(network: Any, pixels: Any, gw: int, gh: int, tile: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Heads ``[H, gh, gw]`` (relative to an even spread, averaged over tiles) and, with registers, patch
    features ``[gh·gw, C]`` averaged likewise."""
    from engine.text.windows import plan_windows  # the same overlapping windows, counted in patches

    p = network.patch_size
    total = count = features = None
    for window in plan_windows(gw, gh, tile):
        crop = pixels[:, :, window.y0 * p:window.y1 * p, window.x0 * p:window.x1 * p]
        maps, tokens = network.attention_and_tokens(crop)
        relative = maps[0].cpu().numpy().astype(np.float64) * (window.width * window.height)  # even spread: 1
        if total is None:
            total = np.zeros((relative.shape[0], gh, gw))
            count = np.zeros((gh, gw))
        total[:, window.y0:window.y1, window.x0:window.x1] += relative
        count[window.y0:window.y1, window.x0:window.x1] += 1
        if network.register_tokens:
            own = tokens[0, 1 + network.register_tokens:].cpu().numpy().reshape(window.height, window.width, -1)
            if features is None:
                features = np.zeros((gh, gw, own.shape[-1]))
            features[window.y0:window.y1, window.x0:window.x1] += own
    heads = (total / count).astype(np.float32)
    averaged = (features / count[..., None]).reshape(gh * gw, -1) if features is not None else None
    return heads, averaged


def keep_mass(grid_values: np.ndarray, share: float = DEFAULT_MASS) -> np.ndarray:
    """The fewest patches holding at least ``share`` of the map's mass (the DINO paper's threshold), as a
    bool grid; ties are broken by position, so the result does not depend on the order of equal values."""
    if not 0.0 < share <= 1.0:
        raise ValueError("the share of attention mass to keep is between 0 and 1")
    flat = grid_values.ravel().astype(np.float64)
    total = flat.sum()
    kept = np.zeros(flat.shape, bool)
    if total <= 0:
        return kept.reshape(grid_values.shape)
    order = np.argsort(-flat, kind="stable")
    cumulative = np.cumsum(flat[order]) / total
    count = int(np.searchsorted(cumulative, share - 1e-12)) + 1
    kept[order[:count]] = True
    return kept.reshape(grid_values.shape)


def pca_rgb(features: np.ndarray, gh: int, gw: int) -> np.ndarray:
    """The first three principal components of patch features ``[gh·gw, C]`` as colours ``[gh, gw, 3]``
    in 0..1 (each component stretched between its 1st and 99th percentile)."""
    centred = features.astype(np.float64) - features.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:3].T  # [N, ≤3]
    if projected.shape[1] < 3:
        projected = np.pad(projected, ((0, 0), (0, 3 - projected.shape[1])))
    low, high = np.percentile(projected, 1, axis=0), np.percentile(projected, 99, axis=0)
    scaled = (projected - low) / np.where(high > low, high - low, 1.0)
    return np.clip(scaled, 0.0, 1.0).reshape(gh, gw, 3).astype(np.float32)
