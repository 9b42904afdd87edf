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
       of the region they are linked to by IoU tracking across slices
       (:mod:`segmentation.core.tracking`), repeated until nothing changes;
       regions that link to no cell get new ids and are reported.

Ids are the painted ids, so they are stable across slices. All arrays are ZYX.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as sk_label
from skimage.segmentation import watershed

from segmentation.core.propagation import FLOW_METHODS, FlowMethod, normalise_slice, propagate_labels
from segmentation.core.tracking import UnlinkedRegion

__all__ = [
    "CELL_METHODS",
    "CellSegmentation",
    "fuse_slice",
    "interior_mask",
    "resolve_by_tracking",
    "segment_cells",
    "split_interior",
]

CellMethod = Literal["fusion", "flow", "interior"]
CELL_METHODS: tuple[str, ...] = ("fusion", "flow", "interior")
NARROW_DEPTH = 2.0
"""Unreached regions at most this many pixels deep are protrusion pieces that may bridge a gap."""


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


def _open_regions(unreached: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected regions of every slice's mask, ids unique across the volume, and each id's slice (id 0: -1)."""
    regions = np.zeros(unreached.shape, np.int32)
    zs: list[np.ndarray] = [np.array([-1])]
    offset = 0
    for z in np.flatnonzero(unreached.any(axis=(1, 2))).tolist():
        lab, k = sk_label(unreached[z], background=0, connectivity=1, return_num=True)
        regions[z] = np.where(lab > 0, lab + offset, 0)
        zs.append(np.full(k, z))
        offset += k
    return regions, np.concatenate(zs)


def _region_depth(regions: np.ndarray, unreached: np.ndarray, n: int) -> np.ndarray:
    """For every region id < ``n``: how deep its deepest pixel lies in the unreached mask (0 if reached).

    1 means every pixel touches the outside (a one-voxel protrusion), 2 a tube up to
    about three pixels wide; cell bodies lie far deeper.
    """
    depth = np.zeros(n, np.float32)
    for z in np.flatnonzero(unreached.any(axis=(1, 2))).tolist():
        sel = unreached[z]
        d = ndi.distance_transform_edt(sel)
        np.maximum.at(depth, regions[z][sel], d[sel].astype(np.float32))
    return depth


def _bridge_gaps(
    out: np.ndarray, tracks: list[np.ndarray], max_gap: float
) -> tuple[list[int], list[int]]:
    """Give unplaced tracks the id of the nearest placed voxel within ``max_gap`` voxels, nearest first.

    ``tracks`` are voxel index arrays (K, 3) of tracks with no id yet (0 in ``out``).
    A track placed joins the placed voxels, so a protrusion broken into pieces by
    holes in the interior mask is joined piece by piece from its cell outwards.
    Returns the indices of the tracks placed and of those left.
    """
    left = list(range(len(tracks)))
    placed: list[int] = []
    margin = int(np.ceil(max_gap)) + 1
    while left:
        best: tuple[float, int, int] | None = None
        for t in left:
            vox = tracks[t]
            lo = np.maximum(vox.min(axis=0) - margin, 0)
            hi = np.minimum(vox.max(axis=0) + margin + 1, out.shape)
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
            sub = out[box]
            if not sub.any():
                continue
            dist, idx = ndi.distance_transform_edt(sub == 0, return_indices=True)
            local = tuple((vox - lo).T)
            d = dist[local]
            k = int(np.argmin(d))
            if d[k] > max_gap:
                continue
            near = tuple(int(i[local][k]) for i in idx)
            if best is None or d[k] < best[0]:
                best = (float(d[k]), t, int(sub[near]))
        if best is None:
            break
        _d, t, value = best
        out[tuple(tracks[t].T)] = value
        left.remove(t)
        placed.append(t)
    return placed, left


def resolve_by_tracking(
    cells: np.ndarray,
    unreached: np.ndarray,
    *,
    min_iou: float,
    min_coverage: float,
    max_gap: float,
    first_new_id: int | None = None,
) -> tuple[np.ndarray, int, tuple[UnlinkedRegion, ...]]:
    """Give each unreached interior region the cell of the regions it is tracked to.

    Unreached 2D regions linked to each other across slices (IoU or coverage above the
    thresholds, or any overlap when one of them is one pixel deep, as a one-voxel
    protrusion overlaps its next cross-section by a single pixel) form one track, e.g.
    the cross-sections of one protrusion. A track joins the cell it overlaps most in
    the neighbouring slices, counting every overlap, because a cross-section that
    enters its cell body has a tiny IoU with the body. A narrow track that overlaps no
    cell (a piece of protrusion cut off by a hole in the interior mask) joins the
    nearest cell or placed track within ``max_gap`` voxels in 3D; a wider or farther
    one keeps a new id and is reported.

    New ids start at ``first_new_id`` (by default one above the largest id in
    ``cells``), so a volume resolved band by band numbers them as a whole one would.
    Returns the resolved ids, the number of regions placed, and the unresolved regions.
    """
    if not unreached.any():
        return cells, 0, ()
    sentinel = max(int(cells.max()) + 1, first_new_id or 0)
    # Only the unreached regions are labelled; the cells they meet are read from ``cells``.
    regions, region_z = _open_regions(unreached)
    n = region_z.shape[0]
    open_ids = np.arange(1, n)
    area = np.bincount(regions.ravel(), minlength=n)
    depth = _region_depth(regions, unreached, n)
    thin = depth <= 1.0
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    open_slices = np.flatnonzero(unreached.any(axis=(1, 2)))
    pairs = sorted({int(z) for z in open_slices if z + 1 < unreached.shape[0]} | {int(z) - 1 for z in open_slices if z > 0})
    for z in pairs:
        a, b = regions[z], regions[z + 1]
        both = (a > 0) & (b > 0)
        if not both.any():
            continue
        keys, inter = np.unique(a[both].astype(np.int64) * n + b[both], return_counts=True)
        ia, ib = np.divmod(keys, n)
        iou = inter / (area[ia] + area[ib] - inter)
        cov = inter / np.minimum(area[ia], area[ib])
        link = (iou >= min_iou) | (cov >= min_coverage) | thin[ia] | thin[ib]
        for x, y in zip(ia[link].tolist(), ib[link].tolist()):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    # A track's votes: every pixel where one of its regions overlaps a cell in the next or previous slice.
    votes: dict[int, dict[int, int]] = {}
    for z in pairs:
        for r, c in ((regions[z], cells[z + 1]), (regions[z + 1], cells[z])):
            hit = (r > 0) & (c > 0)
            if not hit.any():
                continue
            keys, count = np.unique(r[hit].astype(np.int64) * sentinel + c[hit], return_counts=True)
            for k, i in zip(keys.tolist(), count.tolist()):
                track = votes.setdefault(find(k // sentinel), {})
                track[k % sentinel] = track.get(k % sentinel, 0) + i
    lookup = np.zeros(n, np.int64)
    members: dict[int, list[int]] = {}
    tracked = 0
    for r in open_ids.tolist():
        root = find(r)
        if root in votes:
            lookup[r] = max(votes[root].items(), key=lambda kv: (kv[1], -kv[0]))[0]
            tracked += 1
        else:
            members.setdefault(root, []).append(r)
    out = cells.copy()
    sel = unreached & (regions > 0)
    out[sel] = lookup[regions[sel]].astype(out.dtype)
    roots = list(members)
    unresolved: list[UnlinkedRegion] = []
    if roots:
        track_of = np.zeros(n, np.int64)
        for k, root in enumerate(roots, start=1):
            track_of[members[root]] = k
        vox = np.argwhere(sel & (track_of[regions] > 0))
        order = np.argsort(track_of[regions[tuple(vox.T)]], kind="stable")
        vox = vox[order]
        bounds = np.cumsum(np.bincount(track_of[regions[tuple(vox.T)]], minlength=len(roots) + 1))
        tracks = [vox[bounds[k - 1] : bounds[k]] for k in range(1, len(roots) + 1)]
        # Only narrow tracks (pieces of protrusions) bridge: a wide one is a cell of its own.
        narrow = [t for t, root in enumerate(roots) if depth[members[root]].max() <= NARROW_DEPTH]
        wide = [t for t in range(len(roots)) if t not in set(narrow)]
        placed, left = ([], narrow)
        if max_gap > 0 and narrow:
            got, rest = _bridge_gaps(out, [tracks[t] for t in narrow], max_gap)
            placed, left = [narrow[i] for i in got], [narrow[i] for i in rest]
        left = sorted(left + wide)
        tracked += sum(len(members[roots[t]]) for t in placed)
        for new_id, t in enumerate(left, start=sentinel):
            for r in members[roots[t]]:
                z = int(region_z[r])
                yx = np.argwhere(regions[z] == r)
                out[z][regions[z] == r] = new_id
                cy, cx = yx.mean(axis=0)
                unresolved.append(UnlinkedRegion(r, z, int(yx.shape[0]), (float(cy), float(cx)), 0.0))
    return out, tracked, tuple(unresolved)


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
    unreached = mask & (fused == 0)
    fused, tracked, unresolved = resolve_by_tracking(
        fused, unreached, min_iou=min_iou, min_coverage=min_coverage, max_gap=max_gap
    )
    report(1.0)
    return CellSegmentation(fused, method, tracked, unresolved)
