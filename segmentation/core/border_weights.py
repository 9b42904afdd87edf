"""Loss weights that stress the background between objects that nearly touch.

A model trained on painted masks tends to bridge the one- or two-pixel gap between two
mitochondria lying side by side, merging them and running its masks wider than the painted
edges. U-Net's border weights (Ronneberger et al., 2015) answer this by weighting each
background pixel by how close it lies to its two nearest objects,
``w0 * exp(-(d1 + d2)² / (2 σ²))``: large in a narrow gap, negligible in open background
or beside a lone object.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["gap_weights"]

#: Objects per head and patch beyond which the gap term is skipped (cost grows with their count).
MAX_OBJECTS = 64


def gap_weights(target: np.ndarray, weight: np.ndarray, *, w0: float, sigma: float = 2.0) -> np.ndarray:
    """``weight`` with the gap term added to the labeled background of every head.

    target, weight : (heads, H, W) float32, as :class:`~segmentation.core.sampling.PatchSampler`
        makes them (weight 0 = unlabeled). Objects are the 8-connected labeled foreground of a head.
    w0 : the term's height in a gap of zero width (0 returns ``weight`` unchanged).
    sigma : its fall-off, in pixels of the patch.
    Returns a new float32 array; unlabeled pixels and foreground keep their weight.
    """
    if w0 <= 0:
        return weight
    out = weight.astype(np.float32, copy=True)
    for c in range(target.shape[0]):
        fg = (target[c] > 0.5) & (weight[c] > 0)
        objects, n = ndimage.label(fg, structure=np.ones((3, 3), bool))
        if n < 2 or n > MAX_OBJECTS:
            continue
        background = (target[c] <= 0.5) & (weight[c] > 0)
        if not background.any():
            continue
        distances = np.stack([ndimage.distance_transform_edt(objects != k) for k in range(1, n + 1)])
        nearest = np.partition(distances, 1, axis=0)[:2]
        term = w0 * np.exp(-((nearest[0] + nearest[1]) ** 2) / (2.0 * sigma**2))
        out[c] += np.where(background, term, 0.0).astype(np.float32)
    return out
