"""Texture inside masks: intensity statistics and 3D grey-level co-occurrence (GLCM) features.

GLCM definition (also in docs/FEATURES.md): intensities are quantised to ``levels`` grey
levels over one fixed ``intensity_range`` for the whole volume (so cells are comparable),
``q = floor((v - lo) / (hi - lo) * levels)`` clipped to ``[0, levels - 1]``. A pair of
voxels counts when both lie inside the region and they are neighbours at distance 1 along
one of the 13 directions of the 26-neighbourhood (every unordered direction once). Counts
are summed over directions, made symmetric (``P + P.T``) and normalised, and the six
properties are those of :func:`skimage.feature.graycoprops` on that matrix.

Several nested regions (the cell and each organelle class) are measured in one pass:
each voxel carries a region code, and one histogram over (code_a, q_a, code_b, q_b) is
split into regions afterwards, so the cost is one sweep of the cell's box per direction.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from skimage.feature import graycoprops

__all__ = [
    "GLCM_PROPS",
    "INTENSITY_STATS",
    "DIRECTIONS_13",
    "quantise",
    "intensity_stats",
    "glcm_matrices",
    "glcm_props",
]

GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
INTENSITY_STATS = ("mean", "std", "min", "p05", "p25", "median", "p75", "p95", "max")
_PERCENTILES = (0.0, 5.0, 25.0, 50.0, 75.0, 95.0, 100.0)

DIRECTIONS_13: tuple[tuple[int, int, int], ...] = (
    (0, 0, 1), (0, 1, 0), (1, 0, 0),
    (0, 1, 1), (0, 1, -1), (1, 0, 1), (1, 0, -1), (1, 1, 0), (1, -1, 0),
    (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1),
)  # fmt: skip


def quantise(image: np.ndarray, *, levels: int, intensity_range: tuple[float, float]) -> np.ndarray:
    """Grey level per voxel, 0..levels-1, uint8 or uint16.

    Parameters
    ----------
    image : ndarray, any shape, numeric
    levels : int
        Number of grey levels, 2..65536.
    intensity_range : (lo, hi)
        Intensities mapped to the first and past the last level; values outside are clipped.
    """
    lo, hi = float(intensity_range[0]), float(intensity_range[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"intensity_range must be finite with hi > lo, got {intensity_range!r}")
    if not 2 <= levels <= 65536:
        raise ValueError(f"levels must be within 2..65536, got {levels}")
    dtype = np.uint8 if levels <= 256 else np.uint16
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.uint16) and image.size > 4 * 2 ** (8 * image.dtype.itemsize):
        # One level per possible value, then a lookup: the same numbers without a float copy.
        values = np.arange(2 ** (8 * image.dtype.itemsize), dtype=np.float64)
        return quantise(values, levels=levels, intensity_range=(lo, hi))[image]
    scaled = (np.asarray(image, np.float64) - lo) * (levels / (hi - lo))
    return np.clip(np.floor(scaled), 0, levels - 1).astype(dtype)


def intensity_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and percentiles of a 1D sample (NaN when empty).

    Returns
    -------
    dict of str to float
        Keys :data:`INTENSITY_STATS`; in the image's intensity units. Percentiles are linear
        interpolation (numpy's default), ``std`` is the population standard deviation.
    """
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        return {k: math.nan for k in INTENSITY_STATS}
    pct = np.percentile(values, _PERCENTILES)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(pct[0]),
        "p05": float(pct[1]),
        "p25": float(pct[2]),
        "median": float(pct[3]),
        "p75": float(pct[4]),
        "p95": float(pct[5]),
        "max": float(pct[6]),
    }


def glcm_matrices(
    grey: np.ndarray,
    region_code: np.ndarray,
    regions: Mapping[str, Sequence[int]],
    *,
    levels: int,
    directions: Sequence[tuple[int, int, int]] = DIRECTIONS_13,
) -> dict[str, np.ndarray]:
    """Symmetric, unnormalised co-occurrence counts for several regions in one pass.

    Parameters
    ----------
    grey : ndarray of int, shape (Z, Y, X)
        Grey levels 0..levels-1 (from :func:`quantise`).
    region_code : ndarray of int, shape (Z, Y, X)
        Per voxel a small code 0..K-1, or -1 for voxels outside every region.
    regions : mapping of str to sequence of int
        Region name -> the codes it is made of (a nucleus region holds the nucleus and
        nucleolus codes). A pair counts for a region when both voxels carry one of its codes.
    levels : int
    directions : sequence of (dz, dy, dx)
        Neighbour offsets, each unordered direction once (symmetrisation adds the reverse).

    Returns
    -------
    dict of str to ndarray, shape (levels, levels), int64
        Symmetric pair counts per region (all zero when the region has no pair).
    """
    grey = np.asarray(grey)
    region_code = np.asarray(region_code)
    if grey.shape != region_code.shape or grey.ndim != 3:
        raise ValueError(f"grey {grey.shape} and region_code {region_code.shape} must be one 3D shape")
    n_codes = int(region_code.max()) + 1 if region_code.size else 0
    if n_codes <= 0:
        return {name: np.zeros((levels, levels), np.int64) for name in regions}
    # Voxels outside every region get one extra key, so every pair is counted without masking
    # (a gather per direction cost most of the time) and that key's row and column are dropped.
    width = n_codes * levels + 1
    outside = width - 1
    wide = np.int64 if width * width >= 2**31 else np.int32
    key: np.ndarray = np.where(region_code >= 0, region_code.astype(wide) * levels + grey, outside).astype(wide)
    scaled = key * width  # a Python int keeps the array's dtype
    hist = np.zeros(width * width, np.int64)
    for dz, dy, dx in directions:
        src, dst = _pair_slices((dz, dy, dx), key.shape)
        hist += np.bincount((scaled[src] + key[dst]).ravel(), minlength=width * width)
    full = hist.reshape(width, width)[:outside, :outside].reshape(n_codes, levels, n_codes, levels)
    out: dict[str, np.ndarray] = {}
    for name, codes in regions.items():
        sel = [c for c in codes if 0 <= c < n_codes]
        counts = full[np.ix_(sel, range(levels), sel, range(levels))].sum(axis=(0, 2))
        out[name] = counts + counts.T
    return out


def _pair_slices(offset: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    src, dst = [], []
    for d, n in zip(offset, shape):
        if d >= 0:
            src.append(slice(0, n - d))
            dst.append(slice(d, n))
        else:
            src.append(slice(-d, n))
            dst.append(slice(0, n + d))
    return tuple(src), tuple(dst)


def glcm_props(counts: np.ndarray) -> dict[str, float]:
    """The six GLCM properties of :data:`GLCM_PROPS` from pair counts (NaN when no pair).

    Parameters
    ----------
    counts : ndarray, shape (levels, levels)
        Co-occurrence counts (normalised here).

    Returns
    -------
    dict of str to float
        contrast and dissimilarity in grey levels² and grey levels; the others unitless.
        Correlation is 1 for a constant region (skimage's convention).
    """
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    if total <= 0:
        return {p: math.nan for p in GLCM_PROPS}
    p = (counts / total)[:, :, None, None]
    return {prop: float(graycoprops(p, prop)[0, 0]) for prop in GLCM_PROPS}
