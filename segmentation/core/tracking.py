"""IoU linking of 2D regions across consecutive slices (filopodia cross-sections).

A thin protrusion cut by the slice plane shows up as a small island with no visible
connection to its cell. Following it slice by slice, the island overlaps an island
of the neighbouring slice, and so on until the tube joins its cell body. This module
labels the connected regions of every slice and links each region to the region of
the previous and of the next slice with the largest IoU.

Departure from plain IoU: a small cross-section that merges into a large cell body
has a tiny IoU with the body although it lies entirely inside it, so a link also
counts when the overlap covers most of the smaller region (``min_coverage``).
Regions with no link above the thresholds in either direction are reported in
:attr:`TrackResult.unlinked`, never silently dropped.

All arrays are ZYX.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as sk_label

__all__ = ["Link", "TrackResult", "UnlinkedRegion", "link_slices", "slice_regions", "track_regions"]


@dataclass(frozen=True)
class Link:
    """A region's best partner in a neighbouring slice.

    source, target: region ids; iou: intersection over union; coverage: intersection
    over the smaller region's area.
    """

    source: int
    target: int
    iou: float
    coverage: float


@dataclass(frozen=True)
class UnlinkedRegion:
    """A region with no link above the thresholds, to either neighbouring slice.

    region: its id; z: its slice; area: pixels; centroid: (y, x) in pixels;
    best_iou: the largest IoU it had with any neighbouring region (0 if none touched).
    """

    region: int
    z: int
    area: int
    centroid: tuple[float, float]
    best_iou: float


@dataclass(frozen=True)
class TrackResult:
    """Regions of every slice and their links.

    regions: int32 (Z, Y, X), region ids unique across the volume, 0 = none.
    region_z: int array, slice of each region id (index 0 unused, -1).
    value: int array, the input value each region came from (its label or 1 for a mask).
    previous, next: region id -> its best link to slice z-1 / z+1 (only links that
    pass the thresholds).
    weak_previous, weak_next: region id -> its best overlap in z-1 / z+1 when no
    overlap there passes the thresholds.
    unlinked: regions that passed no threshold in either direction.
    """

    regions: np.ndarray
    region_z: np.ndarray
    value: np.ndarray
    previous: dict[int, Link] = field(default_factory=dict)
    next: dict[int, Link] = field(default_factory=dict)
    weak_previous: dict[int, Link] = field(default_factory=dict)
    weak_next: dict[int, Link] = field(default_factory=dict)
    unlinked: tuple[UnlinkedRegion, ...] = ()

    def neighbours(self, region: int, *, weak: bool = False) -> list[Link]:
        """Links of ``region`` in both directions, best IoU first.

        With ``weak=True``, the below-threshold best overlaps instead of the accepted links.
        """
        pair = (self.weak_previous, self.weak_next) if weak else (self.previous, self.next)
        out = [link for link in (pair[0].get(region), pair[1].get(region)) if link is not None]
        return sorted(out, key=lambda link: (-link.iou, -link.coverage))


def slice_regions(volume: np.ndarray, *, connectivity: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected regions of every slice, with ids unique across the volume.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), bool or integer
        A mask (regions = its connected components per slice) or a label volume
        (regions = connected pieces of each label per slice, so touching labels stay
        apart).
    connectivity : {1, 2}
        4- (1) or 8-connectivity (2) within a slice.

    Returns
    -------
    regions : ndarray, shape (Z, Y, X), int32
        Region ids 1..N, 0 = background.
    region_z : ndarray, shape (N + 1,), int
        Slice of each id (entry 0 is -1).
    value : ndarray, shape (N + 1,), int
        Input value under each region (entry 0 is 0).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume must be ZYX, got shape {vol.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity {connectivity} must be 1 or 2")
    if vol.dtype.kind not in "biu":
        raise TypeError(f"volume must be a mask or integer labels, got dtype {vol.dtype}")
    regions = np.zeros(vol.shape, np.int32)
    zs: list[np.ndarray] = [np.array([-1])]
    values: list[np.ndarray] = [np.array([0])]
    offset = 0
    for z in range(vol.shape[0]):
        plane = vol[z].astype(np.int64) if vol.dtype != bool else vol[z].astype(np.uint8)
        lab, n = sk_label(plane, background=0, connectivity=connectivity, return_num=True)
        if n == 0:
            continue
        regions[z] = np.where(lab > 0, lab + offset, 0)
        # Value of each region: any pixel of it (all pixels share the value).
        idx = ndi.maximum(plane, lab, index=np.arange(1, n + 1))
        zs.append(np.full(n, z))
        values.append(np.asarray(idx, dtype=np.int64))
        offset += n
    return regions, np.concatenate(zs), np.concatenate(values)


def link_slices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Overlaps between the regions of two slices.

    Parameters
    ----------
    a, b : ndarray, shape (Y, X), integer
        Region ids of two slices (0 = none).

    Returns
    -------
    ids_a, ids_b, intersection, iou, coverage : ndarray, shape (P,)
        One entry per overlapping pair; coverage is intersection over the smaller area.
    """
    a = np.asarray(a).ravel().astype(np.int64)
    b = np.asarray(b).ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    if not both.any():
        e = np.zeros(0, np.int64)
        return e, e, e, e.astype(float), e.astype(float)
    # Ids are renumbered to 0..k so the pair key fits and the areas come from bincount.
    ua, ra = np.unique(a, return_inverse=True)
    ub, rb = np.unique(b, return_inverse=True)
    area_a = np.bincount(ra, minlength=ua.size)
    area_b = np.bincount(rb, minlength=ub.size)
    keys, inter = np.unique(ra[both] * ub.size + rb[both], return_counts=True)
    ka, kb = np.divmod(keys, ub.size)
    iou = inter / (area_a[ka] + area_b[kb] - inter)
    coverage = inter / np.minimum(area_a[ka], area_b[kb])
    return ua[ka], ub[kb], inter, iou, coverage


def _best(src: np.ndarray, dst: np.ndarray, inter: np.ndarray, iou: np.ndarray, cov: np.ndarray) -> dict[int, Link]:
    order = np.lexsort((-inter, -iou, src))  # by source, then IoU, then intersection, descending
    best: dict[int, Link] = {}
    for i in order:
        s = int(src[i])
        if s not in best:
            best[s] = Link(s, int(dst[i]), float(iou[i]), float(cov[i]))
    return best


def track_regions(
    volume: np.ndarray,
    *,
    min_iou: float = 0.2,
    min_coverage: float = 0.5,
    connectivity: int = 1,
) -> TrackResult:
    """Label every slice's regions and link each to its best partner in z-1 and z+1.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), bool or integer
        A mask or a label volume (see :func:`slice_regions`).
    min_iou : float
        A link with IoU at or above this counts.
    min_coverage : float
        A link whose overlap covers at least this fraction of the smaller region also
        counts (a protrusion cross-section entering its cell body).
    connectivity : {1, 2}
        In-slice connectivity of regions.

    Returns
    -------
    TrackResult

    Examples
    --------
    >>> v = np.zeros((3, 8, 8), bool); v[0, 1:4, 1:4] = v[1, 2:5, 2:5] = True; v[2, 6:8, 6:8] = True
    >>> r = track_regions(v)
    >>> [(u.z, u.area) for u in r.unlinked]
    [(2, 4)]
    """
    if not 0 <= min_iou <= 1 or not 0 <= min_coverage <= 1:
        raise ValueError(f"thresholds min_iou={min_iou}, min_coverage={min_coverage} must lie in [0, 1]")
    regions, region_z, value = slice_regions(volume, connectivity=connectivity)
    previous: dict[int, Link] = {}
    nxt: dict[int, Link] = {}
    weak_prev: dict[int, Link] = {}
    weak_next: dict[int, Link] = {}
    best_iou = np.zeros(region_z.shape[0], float)
    for z in range(regions.shape[0] - 1):
        ia, ib, inter, iou, cov = link_slices(regions[z], regions[z + 1])
        if ia.size == 0:
            continue
        np.maximum.at(best_iou, ia, iou)
        np.maximum.at(best_iou, ib, iou)
        ok = (iou >= min_iou) | (cov >= min_coverage)
        for link in _best(ia[ok], ib[ok], inter[ok], iou[ok], cov[ok]).values():
            nxt[link.source] = link
        for link in _best(ib[ok], ia[ok], inter[ok], iou[ok], cov[ok]).values():
            previous[link.source] = link
        for link in _best(ia, ib, inter, iou, cov).values():
            if link.source not in nxt:
                weak_next[link.source] = link
        for link in _best(ib, ia, inter, iou, cov).values():
            if link.source not in previous:
                weak_prev[link.source] = link
    unlinked: list[UnlinkedRegion] = []
    n = region_z.shape[0] - 1
    if n:
        ids = np.arange(1, n + 1)
        lonely = [i for i in ids.tolist() if i not in previous and i not in nxt]
        if lonely:
            areas = np.bincount(regions.ravel(), minlength=n + 1)
            for i in lonely:
                z = int(region_z[i])
                cy, cx = np.argwhere(regions[z] == i).mean(axis=0)
                unlinked.append(UnlinkedRegion(i, z, int(areas[i]), (float(cy), float(cx)), float(best_iou[i])))
    return TrackResult(regions, region_z, value, previous, nxt, weak_prev, weak_next, tuple(unlinked))
