"""Nucleolar fenestrations: space enclosed by a nucleolus that is not nucleolus.

Definition (also in docs/FEATURES.md)
-------------------------------------
For each nucleolus object N (26-connected component of the nucleolus mask), taken
separately so that two nucleoli are never bridged:

1. Closing: ``C = erode(dilate(N, B_r), B_r)`` with ``B_r`` the Euclidean ball of radius
   ``r = closing_radius_nm`` in physical units (anisotropic voxels handled), computed
   exactly with distance transforms on a crop padded so that the closing is not clipped.
   ``r = 0`` skips the closing.
2. Envelope: ``E = fill_holes(C)``, 3D hole filling where a hole is a 6-connected
   background region not reaching the crop border.
3. Fenestration voxels: ``F = E & ~nucleolus & within`` (``within`` = the cell), pooled
   over the cell's nucleoli.

So a fenestration is either a cavity fully enclosed by the nucleolus, or a channel or
pocket open to the outside through a mouth narrower than ``2 r``. A ball with cavities
gains no voxel from the closing (the digital ball is closed under it), so enclosed
cavities are measured exactly whatever ``r``; the default ``r = 0`` measures exactly
"voxels enclosed by the nucleolus".

Measures: fenestrated % = ``|F| / (|nucleolus| + |F|) * 100`` (the share of the nucleolar
envelope that is fenestration); count = 6-connected components of ``F`` (the complement
connectivity of 26-connected objects).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from segmentation.core.features.morphology import FULL_CONNECTIVITY, tight_box

__all__ = ["Fenestrations", "DEFAULT_CLOSING_RADIUS_NM", "closing", "fenestration_mask", "fenestrations"]

# 0: only cavities fully enclosed by the nucleolus count. A radius r > 0 also counts
# channels and pockets whose mouth is narrower than 2 r, but it also fills the neck
# between two touching nucleoli, so it is a choice the user states (CLI
# --fenestration-closing-nm), not a default.
DEFAULT_CLOSING_RADIUS_NM = 0.0

FACE_CONNECTIVITY = ndi.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class Fenestrations:
    """Fenestrations of the nucleoli of one cell.

    voxels: number of fenestration voxels.
    nucleolus_voxels: number of nucleolus voxels.
    count: 6-connected components of the fenestration voxels.
    """

    voxels: int
    nucleolus_voxels: int
    count: int

    @property
    def fenestrated_pct(self) -> float:
        """Fenestration share of the nucleolar envelope, %; NaN without nucleolus."""
        total = self.voxels + self.nucleolus_voxels
        return 100.0 * self.voxels / total if self.nucleolus_voxels else math.nan


def closing(mask: np.ndarray, *, radius_nm: float, voxel_size_nm: Sequence[float]) -> np.ndarray:
    """Binary closing with a Euclidean ball of ``radius_nm``, not clipped by the array border.

    Parameters
    ----------
    mask : ndarray of bool, shape (Z, Y, X)
    radius_nm : float
        Ball radius in nm (>= 0); 0 returns a copy of ``mask``.
    voxel_size_nm : three floats
        Voxel size (Z, Y, X) in nm.

    Returns
    -------
    ndarray of bool, same shape
        ``erode(dilate(mask))`` where a voxel is within the ball if its centre lies at
        distance <= radius_nm.
    """
    mask = np.asarray(mask, bool)
    if radius_nm < 0 or not math.isfinite(radius_nm):
        raise ValueError(f"closing radius must be a finite number >= 0 nm, got {radius_nm}")
    if radius_nm == 0 or not mask.any():
        return mask.copy()
    sp = np.asarray(voxel_size_nm, np.float64)
    pad = [(int(math.ceil(radius_nm / s)) + 1,) * 2 for s in sp]
    padded = np.pad(mask, pad)
    dilated = ndi.distance_transform_edt(~padded, sampling=sp) <= radius_nm
    closed = ndi.distance_transform_edt(dilated, sampling=sp) > radius_nm
    inner = tuple(slice(p[0], p[0] + n) for p, n in zip(pad, mask.shape))
    return closed[inner] | mask


def fenestration_mask(
    nucleolus: np.ndarray,
    *,
    voxel_size_nm: Sequence[float],
    closing_radius_nm: float = DEFAULT_CLOSING_RADIUS_NM,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Fenestration voxels of the nucleoli in a crop (module docstring gives the definition).

    Parameters
    ----------
    nucleolus : ndarray of bool, shape (Z, Y, X)
        Nucleolus voxels.
    voxel_size_nm : three floats
    closing_radius_nm : float
        Radius of the closing ball in nm (0 = enclosed cavities only).
    within : ndarray of bool, shape (Z, Y, X), optional
        Fenestrations are kept only here (the cell).

    Returns
    -------
    ndarray of bool, shape (Z, Y, X)
    """
    nucleolus = np.asarray(nucleolus, bool)
    if nucleolus.ndim != 3:
        raise ValueError(f"nucleolus must be 3D (Z, Y, X), got shape {nucleolus.shape}")
    if within is not None and np.shape(within) != nucleolus.shape:
        raise ValueError(f"within has shape {np.shape(within)}, nucleolus {nucleolus.shape}")
    sp = np.asarray(voxel_size_nm, np.float64)
    out = np.zeros(nucleolus.shape, bool)
    # Work in the nucleoli's box grown by the closing's reach: holes and closing lie inside.
    margin = [int(math.ceil(closing_radius_nm / s)) + 1 for s in sp]
    region = tuple(
        slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(tight_box(nucleolus), margin, nucleolus.shape)
    )
    labelled, count = ndi.label(nucleolus[region], structure=FULL_CONNECTIVITY)
    out_region = out[region]
    for index, box in enumerate(ndi.find_objects(labelled), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(box, margin, labelled.shape)
        )
        one = labelled[grown] == index
        envelope = ndi.binary_fill_holes(
            closing(one, radius_nm=closing_radius_nm, voxel_size_nm=voxel_size_nm), structure=FACE_CONNECTIVITY
        )
        out_region[grown] |= envelope & ~one
    out &= ~nucleolus
    if within is not None:
        out &= np.asarray(within, bool)
    return out


def fenestrations(
    nucleolus: np.ndarray,
    *,
    voxel_size_nm: Sequence[float],
    closing_radius_nm: float = DEFAULT_CLOSING_RADIUS_NM,
    within: np.ndarray | None = None,
) -> Fenestrations:
    """Count and measure fenestrations of the nucleoli in a crop.

    Parameters are those of :func:`fenestration_mask`.

    Examples
    --------
    >>> n = np.zeros((9, 9, 9), bool); n[1:8, 1:8, 1:8] = True; n[4, 4, 4] = False
    >>> f = fenestrations(n, voxel_size_nm=(4, 4, 4), closing_radius_nm=0)
    >>> f.voxels, f.count
    (1, 1)
    """
    nucleolus = np.asarray(nucleolus, bool)
    fen = fenestration_mask(
        nucleolus, voxel_size_nm=voxel_size_nm, closing_radius_nm=closing_radius_nm, within=within
    )
    _, count = ndi.label(fen, structure=FACE_CONNECTIVITY)
    n_voxels = int(np.count_nonzero(nucleolus if within is None else nucleolus & np.asarray(within, bool)))
    return Fenestrations(voxels=int(np.count_nonzero(fen)), nucleolus_voxels=n_voxels, count=int(count))
