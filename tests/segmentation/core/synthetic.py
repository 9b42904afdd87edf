"""Tiny synthetic volumes shared by the core tests."""
from __future__ import annotations

import numpy as np


def blobs(shape: tuple[int, int, int] = (8, 64, 64), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark ellipsoids (mito) on a bright noisy background; returns image uint8 and truth (1/2)."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    zz, yy, xx = np.mgrid[:z, :y, :x]
    mito = np.zeros(shape, bool)
    for _ in range(z * 3):
        cz, cy, cx = rng.integers(0, z), rng.integers(4, y - 4), rng.integers(4, x - 4)
        mito |= ((zz - cz) / 2.5) ** 2 + ((yy - cy) / 5) ** 2 + ((xx - cx) / 4) ** 2 <= 1
    img = np.where(mito, 80, 170) + rng.normal(0, 12, shape)
    return np.clip(img, 0, 255).astype(np.uint8), np.where(mito, 2, 1).astype(np.uint8)
