"""Placing the interior regions no propagated cell reached, by tracking, slice by slice.

After the fusion has split every slice's interior between the propagated cells, some
interior is left over: protrusions cut off by the slice plane, pieces of them cut off
by holes in the interior mask, cells no key slice shows. :func:`resolve_unreached`
gives them their cells in place, reading ``cells`` and ``interior`` one or two slices
at a time (numpy, zarr or any array-like taking slice assignment), so its memory is a
few slices plus a few numbers per unreached region, whatever the volume's depth:

1. every slice's unreached interior is cut into 4-connected regions; regions of
   neighbouring slices that overlap with IoU or coverage above the thresholds, or at
   all when one of them is one pixel deep (a one-voxel protrusion meets its next
   cross-section in a single pixel), join one track;
2. a track takes the cell it overlaps most in the neighbouring slices, counting every
   overlapping pixel (a cross-section entering its cell body has a tiny IoU with it);
3. a narrow track (at most :data:`NARROW_DEPTH` pixels deep) that overlaps no cell
   joins the nearest cell or placed track within ``max_gap`` voxels in 3D, nearest
   first, so a protrusion broken by holes is rejoined from its cell outwards;
4. the rest keep new ids and are reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as sk_label

from segmentation.core.tracking import UnlinkedRegion

__all__ = ["NARROW_DEPTH", "Resolution", "resolve_unreached"]

NARROW_DEPTH = 2.0
"""Unreached regions at most this many pixels deep are protrusion pieces that may bridge a gap."""


@dataclass(frozen=True)
class Resolution:
    """What :func:`resolve_unreached` did.

    tracked_regions: 2D regions given a cell (by overlap or across a gap).
    unresolved: regions left with new ids, each group tracked together sharing one.
    next_id: one above the largest new id given (``first_new_id`` if none).
    """

    tracked_regions: int
    unresolved: tuple[UnlinkedRegion, ...]
    next_id: int


class _Forest:
    """Union-find over region ids; the root of a set is its smallest id."""

    def __init__(self) -> None:
        self.parent: list[int] = [0]

    def add(self, n: int) -> None:
        self.parent.extend(range(len(self.parent), len(self.parent) + n))

    def find(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = p[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _unreached(cells: Any, interior: Any, z: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(cells[z])
    return c, np.asarray(interior[z]).astype(bool) & (c == 0)


def _regions(unreached: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    lab, k = sk_label(unreached, background=0, connectivity=1, return_num=True)
    return np.where(lab > 0, lab + offset, 0).astype(np.int64), int(k)


def _bridge(cells: Any, tracks: list[np.ndarray], max_gap: float) -> tuple[list[int], list[int]]:
    """Place tracks (voxel arrays (K, 3), raster order) by the nearest placed voxel within ``max_gap``, nearest first."""
    shape = np.array(cells.shape)
    left = list(range(len(tracks)))
    placed: list[int] = []
    margin = int(np.ceil(max_gap)) + 1
    while left:
        best: tuple[float, int, int] | None = None
        for t in left:
            vox = tracks[t]
            lo = np.maximum(vox.min(axis=0) - margin, 0)
            hi = np.minimum(vox.max(axis=0) + margin + 1, shape)
            sub = np.asarray(cells[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))])
            if not sub.any():
                continue
            dist, idx = ndi.distance_transform_edt(sub == 0, return_indices=True)
            local = tuple((vox - lo).T)
            d = dist[local]
            k = int(np.argmin(d))
            if d[k] > max_gap:
                continue
            if best is None or d[k] < best[0]:
                best = (float(d[k]), t, int(sub[tuple(int(i[local][k]) for i in idx)]))
        if best is None:
            break
        _d, t, value = best
        _paint(cells, tracks[t], value)
        left.remove(t)
        placed.append(t)
    return placed, left


def _paint(cells: Any, vox: np.ndarray, value: int) -> None:
    """Write ``value`` at voxels ``vox`` (K, 3), a slice at a time."""
    for z in np.unique(vox[:, 0]).tolist():
        plane = np.array(cells[z])
        yx = vox[vox[:, 0] == z]
        plane[yx[:, 1], yx[:, 2]] = value
        cells[z] = plane


def resolve_unreached(
    cells: Any,
    interior: Any,
    *,
    first_new_id: int,
    min_iou: float = 0.2,
    min_coverage: float = 0.5,
    max_gap: float = 5.0,
) -> Resolution:
    """Give the interior left at 0 in ``cells`` (Z, Y, X) its cells, in place, slice by slice.

    Parameters
    ----------
    cells : array-like, shape (Z, Y, X), integer
        Fused ids, 0 where no cell reached; written back slice by slice.
    interior : array-like, shape (Z, Y, X), bool
        The interior mask.
    first_new_id : int
        Above every id in ``cells`` (checked): new ids count up from it.
    min_iou, min_coverage : float
        Link thresholds between regions of neighbouring slices.
    max_gap : float
        Voxels of hole a narrow track may cross to the nearest placed voxel (0: never).

    Returns
    -------
    Resolution
    """
    n_z = int(cells.shape[0])
    forest = _Forest()
    area: list[int] = [0]
    depth: list[float] = [0.0]
    region_z: list[int] = [-1]
    offsets = np.zeros(n_z + 1, np.int64)
    votes: dict[int, dict[int, int]] = {}
    first_pixel: list[int] = [0]  # each region's first pixel in raster order, to find it again in pass 3

    def vote(regions: np.ndarray, other: np.ndarray) -> None:
        hit = (regions > 0) & (other > 0)
        if not hit.any():
            return
        keys, count = np.unique(regions[hit] * first_new_id + other[hit].astype(np.int64), return_counts=True)
        for ri, ci, k in zip((keys // first_new_id).tolist(), (keys % first_new_id).tolist(), count.tolist()):
            track = votes.setdefault(int(ri), {})
            track[int(ci)] = track.get(int(ci), 0) + int(k)

    # Pass 1: regions, their links and the cells they overlap, two slices at a time.
    prev_cells: np.ndarray | None = None
    prev_regions: np.ndarray | None = None
    total = 0
    for z in range(n_z):
        c, un = _unreached(cells, interior, z)
        if c.size and int(c.max()) >= first_new_id:
            raise ValueError(f"slice {z} holds id {int(c.max())}, not below first_new_id {first_new_id}")
        offsets[z] = total
        regions = np.zeros(un.shape, np.int64)
        if un.any():
            regions, k = _regions(un, total)
            d = ndi.distance_transform_edt(un)
            deep = np.zeros(k + 1, np.float64)
            np.maximum.at(deep, regions[un] - total, d[un])
            area.extend(np.bincount(regions[un] - total, minlength=k + 1)[1:].tolist())
            depth.extend(deep[1:].tolist())
            region_z.extend([z] * k)
            _ids, first = np.unique(regions.ravel(), return_index=True)
            first_pixel.extend(first[1:].tolist())
            forest.add(k)
            total += k
        if prev_regions is not None and prev_cells is not None and (prev_regions.any() or regions.any()):
            both = (prev_regions > 0) & (regions > 0)
            if both.any():
                keys, inter = np.unique(prev_regions[both] * (total + 1) + regions[both], return_counts=True)
                ar = np.asarray(area, np.float64)
                ia, ib = np.divmod(keys, total + 1)
                iou = inter / (ar[ia] + ar[ib] - inter)
                cov = inter / np.minimum(ar[ia], ar[ib])
                thin = np.asarray(depth)
                link = (iou >= min_iou) | (cov >= min_coverage) | (thin[ia] <= 1.0) | (thin[ib] <= 1.0)
                for a, b in zip(ia[link].tolist(), ib[link].tolist()):
                    forest.union(a, b)
            vote(prev_regions, c)
            vote(regions, prev_cells)
        prev_cells, prev_regions = c, regions
    offsets[n_z] = total
    if total == 0:
        return Resolution(0, (), int(first_new_id))
    track_votes: dict[int, dict[int, int]] = {}
    for r, vs in votes.items():
        agg = track_votes.setdefault(forest.find(r), {})
        for cid, k in vs.items():
            agg[cid] = agg.get(cid, 0) + k
    lookup = np.zeros(total + 1, np.int64)
    members: dict[int, list[int]] = {}
    tracked = 0
    for r in range(1, total + 1):
        root = forest.find(r)
        if root in track_votes:
            lookup[r] = max(track_votes[root].items(), key=lambda kv: (kv[1], -kv[0]))[0]
            tracked += 1
        else:
            members.setdefault(root, []).append(r)
    roots = list(members)
    deep_arr = np.asarray(depth)
    narrow = [t for t, root in enumerate(roots) if deep_arr[members[root]].max() <= NARROW_DEPTH]
    track_of = np.zeros(total + 1, np.int64)
    for t in narrow:
        track_of[members[roots[t]]] = t + 1
    # Pass 2: write the voted cells; collect the voxels of narrow unvoted tracks (raster order).
    pieces: dict[int, list[np.ndarray]] = {t: [] for t in narrow}
    for z in range(n_z):
        if offsets[z + 1] == offsets[z]:
            continue
        c, un = _unreached(cells, interior, z)
        regions, _k = _regions(un, int(offsets[z]))
        got = lookup[regions]
        if (got > 0).any():
            cells[z] = np.where(got > 0, got, c).astype(c.dtype, copy=False)
        owner = track_of[regions]
        for t in np.unique(owner[owner > 0]).tolist():
            yx = np.argwhere(owner == t)
            pieces[t - 1].append(np.column_stack([np.full(len(yx), z), yx]))
    tracks = [np.concatenate(pieces[t]) for t in narrow]
    placed: list[int] = []
    left = list(narrow)
    if max_gap > 0 and narrow:
        got_i, rest_i = _bridge(cells, tracks, max_gap)
        placed, left = [narrow[i] for i in got_i], [narrow[i] for i in rest_i]
    tracked += sum(len(members[roots[t]]) for t in placed)
    left = sorted(left + [t for t in range(len(roots)) if t not in set(narrow)])
    # Pass 3: new ids for what is left, on the slices that hold it.
    new_id = np.zeros(total + 1, np.int64)
    for i, t in enumerate(left):
        new_id[members[roots[t]]] = int(first_new_id) + i
    unresolved: list[UnlinkedRegion] = []
    for z in sorted({region_z[r] for t in left for r in members[roots[t]]}):
        c, rest = _unreached(cells, interior, z)  # now only the regions left
        lab, k = sk_label(rest, background=0, connectivity=1, return_num=True)
        comp_id = np.zeros(k + 1, np.int64)
        comp_region = np.zeros(k + 1, np.int64)
        for r in range(int(offsets[z]) + 1, int(offsets[z + 1]) + 1):
            if new_id[r]:
                comp = lab.flat[first_pixel[r]]
                comp_id[comp], comp_region[comp] = new_id[r], r
        ids = comp_id[lab]
        cells[z] = np.where(ids > 0, ids, c).astype(c.dtype, copy=False)
        for comp in np.flatnonzero(comp_id).tolist():
            yx = np.argwhere(lab == comp)
            cy, cx = yx.mean(axis=0)
            unresolved.append(UnlinkedRegion(int(comp_region[comp]), z, int(yx.shape[0]), (float(cy), float(cx)), 0.0))
    unresolved.sort(key=lambda u: (new_id[u.region], u.region))
    return Resolution(tracked, tuple(unresolved), int(first_new_id) + len(left))
