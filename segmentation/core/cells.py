"""Cell instances: interior mask + optical-flow propagation + IoU tracking, fused.

Three ways to get 3D cell instances from an EM volume, a cell-interior mask and
instance labels painted on a few key slices, as compared in the paper (Fig 2F):

``interior``
    3D connected components of the interior mask. Touching cells merge.
``flow``
    Optical-flow propagation of the key-slice labels alone
    (:func:`segmentation.core.propagation.propagate_labels`). Boundaries drift
    between key slices and protrusions cut by the slice plane are missed.
``fusion``
    1. propagate the key labels along the flow;
    2. restrict them to the interior mask and shrink them to confident cores;
    3. split each slice's interior between the cells by a seeded watershed on the
       image darkness (membranes are dark in FIB-SEM), so boundaries snap to the
       membranes instead of drifting with the flow;
    4. interior regions no seed reached (protrusions cut by the plane) take the cell
       they are tracked to across slices, one-voxel protrusions and pieces cut off by
       holes in the interior mask included (:mod:`segmentation.core.cell_tracking`);
       regions that reach no cell get new ids and are reported.

Ids are the painted ids, so they are stable across slices. All arrays are ZYX.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from segmentation.core.cell_tracking import resolve_unreached
from segmentation.core.propagation import FLOW_METHODS, FlowMethod, normalise_slice, propagate_labels
from segmentation.core.tracking import UnlinkedRegion

__all__ = [
    "CELL_METHODS",
    "CellSegmentation",
    "fuse_slice",
    "interior_mask",
    "segment_cells",
    "split_interior",
]

CellMethod = Literal["fusion", "flow", "interior"]
CELL_METHODS: tuple[str, ...] = ("fusion", "flow", "interior")


@dataclass(frozen=True)
class CellSegmentation:
    """Result of :func:`segment_cells`.

    cells: uint32 (Z, Y, X) instance ids, 0 = no cell.
    method: the method used.
    tracked_regions: number of 2D interior regions placed by tracking (fusion only).
    unresolved: interior regions that neither propagation nor tracking could place;
        each group of them linked together got a new id (fusion only).
    """

    cells: np.ndarray
    method: str
    tracked_regions: int = 0
    unresolved: tuple[UnlinkedRegion, ...] = ()


def interior_mask(interior: Any, *, threshold: float = 0.5) -> np.ndarray:
    """A boolean interior mask from a mask, a 0/255 image or a probability map.

    Parameters
    ----------
    interior : array-like, shape (Z, Y, X)
        bool; integer (non-zero = interior); or float probability in [0, 1].
    threshold : float
        Cut for float probabilities.

    Returns
    -------
    ndarray, shape (Z, Y, X), bool
    """
    a = np.asarray(interior)
    if a.dtype == bool:
        return a.copy()
    if a.dtype.kind in "ui":
        return a > 0
    if a.dtype.kind == "f":
        if a.size and (float(np.nanmin(a)) < 0 or float(np.nanmax(a)) > 1):
            raise ValueError(
                f"interior probabilities must lie in [0, 1], got {float(np.nanmin(a))}..{float(np.nanmax(a))}"
            )
        return a >= threshold
    raise TypeError(f"interior must be a mask, integers or probabilities, got dtype {a.dtype}")


def _cores(seeds: np.ndarray, shrink: int) -> np.ndarray:
    """Shrink every label by ``shrink`` px (where it meets another label or 0); keep tiny labels whole."""
    if shrink <= 0:
        return seeds
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
    f = seeds.astype(np.float32)  # ids < 2**24 stay exact
    same = (cv2.erode(f, k, borderType=cv2.BORDER_REPLICATE) == cv2.dilate(f, k, borderType=cv2.BORDER_REPLICATE))
    core = np.where(same & (seeds > 0), seeds, 0)
    lost = np.setdiff1d(np.unique(seeds), np.unique(core))
    lost = lost[lost > 0]
    if lost.size:
        keep = np.isin(seeds, lost)
        core[keep] = seeds[keep]
    return core


def split_interior(
    plane: np.ndarray,
    interior: np.ndarray,
    seeds: np.ndarray,
    *,
    shrink: int = 2,
    sigma: float = 1.0,
) -> np.ndarray:
    """Split one slice's interior between seeded cells by a watershed on image darkness.

    Parameters
    ----------
    plane : ndarray, shape (Y, X), real
        The EM slice (membranes dark).
    interior : ndarray, shape (Y, X), bool
        Cell-interior mask.
    seeds : ndarray, shape (Y, X), integer
        Cell ids (e.g. propagated labels), 0 = unknown. Only seeds inside the interior count.
    shrink : int
        Pixels removed from each seed where it meets another id, so boundaries are
        redrawn by the watershed rather than taken from the seeds.
    sigma : float
        Gaussian smoothing (pixels) of the darkness before flooding.

    Returns
    -------
    ndarray, shape (Y, X), same dtype as seeds
        Ids on the interior reached by a seed, 0 on interior components with no seed
        and outside the interior.
    """
    if plane.shape != interior.shape or plane.shape != seeds.shape:
        raise ValueError(f"shapes differ: plane {plane.shape}, interior {interior.shape}, seeds {seeds.shape}")
    markers = np.where(interior, seeds, 0)
    if not markers.any():
        return np.zeros_like(seeds)
    markers = _cores(markers, shrink)
    dark: np.ndarray = 255.0 - normalise_slice(plane).astype(np.float32)
    if sigma > 0:
        dark = cv2.GaussianBlur(dark, (0, 0), sigma)
    out = watershed(dark, markers=markers.astype(np.int64), mask=interior)
    return out.astype(seeds.dtype, copy=False)


def fuse_slice(
    plane: np.ndarray, interior: np.ndarray, propagated: np.ndarray, key: np.ndarray | None, *, shrink: int = 2
) -> np.ndarray:
    """One slice of the fusion: the interior split between the propagated cells, uint32.

    On a key slice (``key`` given) the painting is the truth: it is kept as painted and
    the watershed only fills the rest, from seeds not shrunk.
    """
    out = split_interior(plane, interior, propagated, shrink=0 if key is not None else shrink).astype(np.uint32)
    if key is not None:
        out = np.where(key > 0, key, out).astype(np.uint32)
    return out


def segment_cells(
    image: Any,
    interior: Any,
    keys: Any,
    *,
    method: CellMethod = "fusion",
    flow: FlowMethod = "dis",
    key_indices: Sequence[int] | None = None,
    threshold: float = 0.5,
    shrink: int = 2,
    min_iou: float = 0.2,
    min_coverage: float = 0.5,
    max_gap: float = 5.0,
    on_progress: Callable[[float], None] | None = None,
) -> CellSegmentation:
    """3D cell instances by interior mask, optical flow, or their fusion.

    Parameters
    ----------
    image : array-like, shape (Z, Y, X), real
        The EM volume (membranes dark).
    interior : array-like, shape (Z, Y, X)
        Cell-interior mask (bool or integer) or probability (float in [0, 1]).
    keys : array-like, shape (Z, Y, X), integer
        Cell ids painted on key slices, 0 elsewhere; one id per cell on every key slice.
        Not used by ``method="interior"``.
    method : {"fusion", "flow", "interior"}
        See the module docstring.
    flow : {"dis", "farneback"}
        Optical flow for propagation.
    key_indices : sequence of int, optional
        Key slices, when some painted key slice holds no cell.
    threshold : float
        Cut for a probability interior.
    shrink : int
        Pixels trimmed from propagated labels where cells meet, before the watershed.
    min_iou, min_coverage : float
        Tracking link thresholds (see :func:`segmentation.core.tracking.track_regions`);
        one-pixel-deep regions (thin protrusions) link on any overlap.
    max_gap : float
        Voxels of hole in the interior mask that an unreached region tracked to no cell
        may lie from the nearest cell or placed region and still join it (0: never).
    on_progress : callable, optional
        Called with the fraction done (0..1).

    Returns
    -------
    CellSegmentation
        ``cells`` is uint32 (Z, Y, X).

    Examples
    --------
    >>> img = np.full((3, 24, 24), 200, np.uint8); img[:, :, 12] = 40   # a dark membrane
    >>> keys = np.zeros((3, 24, 24), np.uint16); keys[0, :, :12] = 1; keys[0, :, 13:] = 2
    >>> out = segment_cells(img, np.ones((3, 24, 24), bool), keys).cells
    >>> out[2, 5, 3], out[2, 5, 20]
    (np.uint32(1), np.uint32(2))
    """
    if method not in CELL_METHODS:
        raise ValueError(f"method {method!r} is not one of {CELL_METHODS}")
    if flow not in FLOW_METHODS:
        raise ValueError(f"flow {flow!r} is not one of {FLOW_METHODS}")
    shape = tuple(int(s) for s in image.shape)
    if len(shape) != 3:
        raise ValueError(f"image must be ZYX, got shape {shape}")
    if tuple(interior.shape) != shape:
        raise ValueError(f"interior shape {tuple(interior.shape)} differs from image shape {shape}")

    def report(x: float) -> None:
        if on_progress is not None:
            on_progress(float(min(1.0, max(0.0, x))))

    if method == "interior":
        mask = interior_mask(interior, threshold=threshold)
        lab, _n = ndi.label(mask)
        report(1.0)
        return CellSegmentation(lab.astype(np.uint32), method)

    propagated = propagate_labels(
        image,
        keys,
        method=flow,
        key_indices=key_indices,
        on_progress=lambda f: report(f * (1.0 if method == "flow" else 0.75)),
    )
    if method == "flow":
        report(1.0)
        return CellSegmentation(propagated, method)

    mask = interior_mask(interior, threshold=threshold)
    fused = np.zeros(shape, np.uint32)
    painted = set(int(k) for k in key_indices) if key_indices is not None else None
    for z in range(shape[0]):
        key = np.asarray(keys[z])
        is_key = z in painted if painted is not None else bool(key.any())
        fused[z] = fuse_slice(np.asarray(image[z]), mask[z], propagated[z], key if is_key else None, shrink=shrink)
        report(0.75 + 0.2 * (z + 1) / shape[0])
    res = resolve_unreached(
        fused, mask, first_new_id=int(fused.max()) + 1, min_iou=min_iou, min_coverage=min_coverage, max_gap=max_gap
    )
    report(1.0)
    return CellSegmentation(fused, method, res.tracked_regions, res.unresolved)
