"""The cell table and per-cell Dice of an instance volume, from counts gathered slab by slab.

A cell's voxels, slices spanned and centroid, and each truth cell's Dice against the
predicted cell overlapping it most, are sums over voxels: :class:`CellTableCounts` and
:class:`OverlapCounts` add them up one slice at a time, so a volume larger than memory
is measured while it is written, holding one slice and a few numbers per cell. Their
results equal :func:`cell_table` and :func:`segmentation.core.metrics.instance_dice`
on the whole array.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from segmentation.core.metrics import InstanceDice

__all__ = ["CellTableCounts", "OverlapCounts", "cell_table"]


def _row(cid: int, n: int, z0: int, z1: int, centroid: Any, um3: float) -> dict[str, Any]:
    return {"id": int(cid), "voxels": int(n), "volume_um3": float(f"{n * um3:.6g}"),
            "z0": int(z0), "z1": int(z1), "slices": int(z1 - z0 + 1),
            "centroid": [round(float(v), 1) for v in centroid]}


def cell_table(cells: np.ndarray, voxel_size_nm: tuple[float, float, float]) -> list[dict[str, Any]]:
    """One row per cell id of a whole (Z, Y, X) array: voxels, volume (um^3), first/last
    slice and centroid (ZYX voxels)."""
    ids, counts = np.unique(cells[cells > 0], return_counts=True)
    if ids.size == 0:
        return []
    um3 = float(np.prod(voxel_size_nm)) / 1e9
    boxes = ndi.find_objects(cells.astype(np.int64, copy=False))
    centroids = ndi.center_of_mass(np.ones(cells.shape, np.float32), cells, ids.tolist())
    return [_row(cid, n, boxes[cid - 1][0].start, boxes[cid - 1][0].stop - 1, c, um3)
            for cid, n, c in zip(ids.tolist(), counts.tolist(), centroids)]


class CellTableCounts:
    """:func:`cell_table` gathered slice by slice: ``add`` each slab in any order, then ``rows``.

    Per cell it keeps the voxel count, the sums of the voxels' z, y and x (exact integers,
    so the centroids equal ``ndimage.center_of_mass``'s) and the first and last slice.
    """

    def __init__(self) -> None:
        self._cells: dict[int, list[int]] = {}  # id -> [voxels, z sum, y sum, x sum, first z, last z]

    @property
    def top(self) -> int:
        """The largest id seen (0 when none)."""
        return max(self._cells, default=0)

    def add(self, slab: Any, z0: int) -> None:
        """Count the slices of ``slab`` (Z, Y, X integer ids, 0 = none), its first slice being ``z0``."""
        slab = np.asarray(slab)
        if slab.ndim != 3:
            raise ValueError(f"a slab is (Z, Y, X), got shape {slab.shape}")
        width = slab.shape[2]
        for i in range(slab.shape[0]):
            z = int(z0) + i
            flat = slab[i].ravel()
            where = np.flatnonzero(flat)
            if where.size == 0:
                continue
            ids, inverse, counts = np.unique(flat[where], return_inverse=True, return_counts=True)
            ysum = np.bincount(inverse, weights=where // width, minlength=ids.size)
            xsum = np.bincount(inverse, weights=where % width, minlength=ids.size)
            for cid, n, ys, xs in zip(ids.tolist(), counts.tolist(), ysum.tolist(), xsum.tolist()):
                c = self._cells.get(cid)
                if c is None:
                    self._cells[cid] = [n, n * z, int(ys), int(xs), z, z]
                    continue
                c[0] += n
                c[1] += n * z
                c[2] += int(ys)
                c[3] += int(xs)
                c[4] = min(c[4], z)
                c[5] = max(c[5], z)

    def rows(self, voxel_size_nm: tuple[float, float, float]) -> list[dict[str, Any]]:
        """The table, one row per cell in id order, as :func:`cell_table` gives it."""
        um3 = float(np.prod(voxel_size_nm)) / 1e9
        out = []
        for cid in sorted(self._cells):
            n, zs, ys, xs, first, last = self._cells[cid]
            out.append(_row(cid, n, first, last, (float(zs) / n, float(ys) / n, float(xs) / n), um3))
        return out


class OverlapCounts:
    """:func:`segmentation.core.metrics.instance_dice` gathered slice by slice: ``add`` every
    slab of the prediction with the same slab of the truth, then ``dice``."""

    def __init__(self) -> None:
        self.truth_sizes: Counter[int] = Counter()
        self.pred_sizes: Counter[int] = Counter()
        self.pairs: Counter[tuple[int, int]] = Counter()

    def add(self, pred: Any, truth: Any) -> None:
        pred, truth = np.asarray(pred), np.asarray(truth)
        if pred.shape != truth.shape:
            raise ValueError(f"pred shape {pred.shape} differs from truth shape {truth.shape}")
        planes = zip(pred, truth) if pred.ndim == 3 else [(pred, truth)]
        for p2, t2 in planes:
            p = p2.ravel().astype(np.int64, copy=False)
            t = t2.ravel().astype(np.int64, copy=False)
            for sizes, a in ((self.truth_sizes, t), (self.pred_sizes, p)):
                ids, counts = np.unique(a[a != 0], return_counts=True)
                sizes.update(dict(zip(ids.tolist(), counts.tolist())))
            both = (t != 0) & (p != 0)
            keys, counts = np.unique((t[both] << 32) | p[both], return_counts=True)
            self.pairs.update({(k >> 32, k & 0xFFFFFFFF): n for k, n in zip(keys.tolist(), counts.tolist())})

    def dice(self) -> InstanceDice:
        """Per truth cell, Dice against the predicted cell overlapping it most (ties: the lower id)."""
        best: dict[int, tuple[int, int]] = {}
        for (tid, pid), n in sorted(self.pairs.items()):
            if tid not in best or n > best[tid][1]:
                best[tid] = (pid, n)
        cells: dict[int, float] = {}
        matched: dict[int, int] = {}
        for tid in sorted(self.truth_sizes):
            pid, n = best.get(tid, (0, 0))
            matched[tid] = pid
            cells[tid] = 0.0 if pid == 0 else 2.0 * n / (self.truth_sizes[tid] + self.pred_sizes[pid])
        if cells:
            mean = float(np.mean(list(cells.values())))
        else:
            mean = 1.0 if not self.pred_sizes else 0.0
        return {"cells": cells, "mean": mean, "matched": matched}
