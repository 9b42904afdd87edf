"""Where two label layers of a volume disagree: counts, Dice per class and per cell, and overlay tiles.

Both layers are read one z slice at a time, so memory stays at a few slices whatever
the volume's size.

* Class layers ("labels"): compared where BOTH layers are labeled (non-zero), so a
  sparse manual layer is compared only where it was painted. A voxel disagrees where
  the two values differ there. Dice of class c is 2|A=c & B=c| / (|A=c| + |B=c|) over
  the compared voxels.
* Instance layers ("instances"): ids differ between layers, so the comparison is by
  overlap. Compared are the voxels labeled in either layer on the z slices where both
  layers hold ids (a cells layer painted on key slices is compared only there). A voxel
  disagrees where exactly one layer labels it. Class "cell" is the Dice of the two
  foregrounds; each cell of A is matched to the cell of B that overlaps it most (ties:
  the lower id) and scored by Dice, or 0 with b = None when nothing overlaps.

The pure counting (:class:`DiffCounts`, :func:`disagreement_plane`) needs no Django.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

LABELS, INSTANCES = "labels", "instances"
TILE = 256  # the label tiles' size (annotations/tiles.py renders with read_tile's default)


def disagreement_plane(a: np.ndarray, b: np.ndarray, *, kind: str) -> np.ndarray:
    """Boolean mask of the voxels where `a` and `b` disagree (see the module docstring).

    Parameters
    ----------
    a, b : ndarray, same shape, integer (0 = unlabeled)
    kind : "labels" or "instances"
        For "instances" the caller decides whether the plane is compared at all.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"layer planes differ in shape: {a.shape} vs {b.shape}")
    if kind == LABELS:
        return (a != 0) & (b != 0) & (a != b)
    if kind == INSTANCES:
        return (a != 0) != (b != 0)
    raise ValueError(f"kind {kind!r} is not 'labels' or 'instances'")


def _bincount_dict(values: np.ndarray) -> dict[int, int]:
    if values.size == 0:
        return {}
    ids, counts = np.unique(values.astype(np.int64, copy=False), return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


@dataclass
class DiffCounts:
    """Running counts of a layer comparison, fed one z slice at a time with :meth:`add`."""

    kind: str
    compared: int = 0
    disagree: int = 0
    slices: list[dict[str, int]] = field(default_factory=list)
    a_voxels: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    b_voxels: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    both: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pairs: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        if self.kind not in (LABELS, INSTANCES):
            raise ValueError(f"kind {self.kind!r} is not 'labels' or 'instances'")

    def add(self, z: int, a: np.ndarray, b: np.ndarray) -> None:
        """Count slice `z`: `a` and `b` are its (Y, X) planes of the two layers."""
        a, b = np.asarray(a), np.asarray(b)
        if self.kind == LABELS:
            seen = (a != 0) & (b != 0)
            av, bv = a[seen], b[seen]
            n_disagree = int(np.count_nonzero(av != bv))
            for key, n in _bincount_dict(av).items():
                self.a_voxels[key] += n
            for key, n in _bincount_dict(bv).items():
                self.b_voxels[key] += n
            for key, n in _bincount_dict(av[av == bv]).items():
                self.both[key] += n
            self.compared += int(seen.sum())
        else:
            fa, fb = a != 0, b != 0
            if not (fa.any() and fb.any()):
                self.slices.append({"z": int(z), "disagree": 0})
                return
            self.compared += int(np.count_nonzero(fa | fb))
            n_disagree = int(np.count_nonzero(fa != fb))
            self.a_voxels[1] += int(fa.sum())
            self.b_voxels[1] += int(fb.sum())
            self.both[1] += int(np.count_nonzero(fa & fb))
            for key, n in _bincount_dict(a[fa]).items():
                self.pairs[(key, 0)] += n  # cell sizes of A under key (id, 0)
            for key, n in _bincount_dict(b[fb]).items():
                self.pairs[(0, key)] += n  # cell sizes of B under key (0, id)
            both = fa & fb
            if both.any():
                stacked = np.stack([a[both].astype(np.int64), b[both].astype(np.int64)])
                ids, counts = np.unique(stacked, axis=1, return_counts=True)
                for (ia, ib), n in zip(ids.T.tolist(), counts.tolist()):
                    self.pairs[(ia, ib)] += n
        self.disagree += n_disagree
        self.slices.append({"z": int(z), "disagree": n_disagree})

    def classes(self, names: dict[int, str]) -> dict[str, dict[str, Any]]:
        """{class name: {"dice", "a_voxels", "b_voxels"}} for the classes present in either layer.

        `names` maps values to names; a value without a name is named by its number. For
        instance layers the one class is the foreground (named by ``names[1]``, default "cell").
        """
        out: dict[str, dict[str, Any]] = {}
        for value in sorted(set(self.a_voxels) | set(self.b_voxels)):
            na, nb = self.a_voxels.get(value, 0), self.b_voxels.get(value, 0)
            if na + nb == 0:
                continue
            name = names.get(value, str(value))
            out[name] = {"dice": round(2.0 * self.both.get(value, 0) / (na + nb), 6), "a_voxels": na,
                         "b_voxels": nb}
        return out

    def cells(self) -> list[dict[str, Any]]:
        """Per cell of A: the best-overlapping cell of B and their Dice (instance layers only)."""
        if self.kind != INSTANCES:
            return []
        size_a = {ia: n for (ia, ib), n in self.pairs.items() if ib == 0 and ia != 0}
        size_b = {ib: n for (ia, ib), n in self.pairs.items() if ia == 0 and ib != 0}
        best: dict[int, tuple[int, int]] = {}
        for (ia, ib), n in self.pairs.items():
            if ia == 0 or ib == 0:
                continue
            if ia not in best or n > best[ia][1] or (n == best[ia][1] and ib < best[ia][0]):
                best[ia] = (ib, n)
        out = []
        for ia in sorted(size_a):
            ib, n = best.get(ia, (0, 0))
            dice = 0.0 if ib == 0 else 2.0 * n / (size_a[ia] + size_b[ib])
            out.append({"a": ia, "b": ib or None, "dice": round(dice, 6)})
        return out


# ---------------------------------------------------------------- the Django side
def _invalid(message: str, code: str = "invalid", status: int = 400) -> Any:
    from emportal.errors import ApplicationError

    return ApplicationError(message, code=code, status_code=status)


def diff_layers_of(volume: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """The two LabelLayer rows to compare; refused when either is unknown, they are equal or of different kinds."""
    rows = []
    for name, which in ((a, "a"), (b, "b")):
        if name in (None, ""):
            raise _invalid(f"give layer {which} (?{which}=<layer name>)", code="unknown_layer")
        layer = volume.layers.filter(name=str(name)).first()
        if layer is None:
            names = ", ".join(volume.layers.values_list("name", flat=True))
            raise _invalid(f"volume {volume.name!r} has no layer {name!r} (it has: {names})", code="unknown_layer")
        rows.append(layer)
    if rows[0].pk == rows[1].pk:
        raise _invalid("compare two different layers", code="same_layer")
    if rows[0].kind != rows[1].kind:
        raise _invalid(f"layer {rows[0].name!r} holds {rows[0].kind} and {rows[1].name!r} holds {rows[1].kind}; "
                       "only layers of one kind can be compared", code="kind_mismatch")
    return rows[0], rows[1]


def _z_range(volume: Any, z0: Any, z1: Any) -> tuple[int, int]:
    nz = volume.shape_z
    try:
        lo = 0 if z0 in (None, "") else int(z0)
        hi = nz if z1 in (None, "") else int(z1)
    except (TypeError, ValueError):
        raise _invalid(f"z0={z0!r}, z1={z1!r} are not integers") from None
    if not 0 <= lo < hi <= nz:
        raise _invalid(f"z range {lo}..{hi} is not inside the volume's 0..{nz} (z1 exclusive)", code="off_volume")
    return lo, hi


def layers_diff(volume: Any, a: Any, b: Any, *, z0: Any = None, z1: Any = None) -> dict[str, Any]:
    """Compare layers `a` and `b` of `volume` over slices z0..z1-1 (default all), slice by slice."""
    from annotations.imaging import omezarr
    from annotations.models import LabelClass
    from annotations.storage import volume_zarr_path

    layer_a, layer_b = diff_layers_of(volume, a, b)
    lo, hi = _z_range(volume, z0, z1)
    dest = volume_zarr_path(volume)
    arr_a = omezarr.open_label_level(dest, layer_a.name, 0)
    arr_b = omezarr.open_label_level(dest, layer_b.name, 0)
    counts = DiffCounts(layer_a.kind)
    for z in range(lo, hi):
        counts.add(z, np.asarray(arr_a[z]), np.asarray(arr_b[z]))
    classes = LabelClass.objects.filter(project_id=volume.project_id)
    if layer_a.kind == LABELS:
        names = {c.value: c.name for c in classes if c.kind == LabelClass.Kind.SEMANTIC}
    else:
        cell = next((c.name for c in classes if c.kind == LabelClass.Kind.INSTANCE), "cell")
        names = {1: cell}
    return {"a": layer_a.name, "b": layer_b.name, "kind": layer_a.kind, "z0": lo, "z1": hi,
            "compared_voxels": counts.compared, "disagree_voxels": counts.disagree,
            "classes": counts.classes(names), "cells": counts.cells(), "slices": counts.slices}


@lru_cache(maxsize=256)
def _labeled_z(zarr_path: str, layer: str, level: int, version: int) -> np.ndarray:
    """Which z slices of a layer hold any label (bool per z), read at the given level."""
    from annotations.imaging import omezarr

    arr = omezarr.open_label_level(Path(zarr_path), layer, level)
    return np.array([bool(np.any(np.asarray(arr[z]))) for z in range(arr.shape[0])])


def disagreement_tile_labels(plane_a: np.ndarray, plane_b: np.ndarray, *, kind: str,
                             compared: np.ndarray | bool = True) -> np.ndarray:
    """The label plane a diff tile paints: B's value where the layers disagree (A's where B is 0), else 0.

    `compared` (instances): whether the plane's z slice is compared (a bool, for an XY
    plane) or, per row, whether that row's z slice is (a bool array, for XZ/YZ planes).
    """
    mask = disagreement_plane(plane_a, plane_b, kind=kind)
    if isinstance(compared, np.ndarray):
        if compared.shape != (mask.shape[0],):
            raise ValueError(f"compared has shape {compared.shape}, the plane has {mask.shape[0]} rows")
        mask &= compared.astype(bool)[:, None]
    elif not compared:
        mask[:] = False
    return np.where(mask, np.where(plane_b != 0, plane_b, plane_a), 0)


def render_diff_tile(volume: dict[str, Any], layer_a: Any, layer_b: Any, *, axis: str, index: int, level: int,
                     ty: int, tx: int, colors: dict[int, Any]) -> bytes:
    """PNG bytes of the disagreement overlay of one tile (the label tiles' grid and levels)."""
    from django.conf import settings

    from annotations import tiles as tile_views
    from annotations.imaging import tiles

    arr_a = tile_views.label_level(volume["zarr_path"], layer_a.name, level)
    arr_b = tile_views.label_level(volume["zarr_path"], layer_b.name, level)
    plane_a = tiles.read_tile(arr_a, axis=axis, index=index, ty=ty, tx=tx, tile=TILE)
    plane_b = tiles.read_tile(arr_b, axis=axis, index=index, ty=ty, tx=tx, tile=TILE)
    compared: np.ndarray | bool = True
    if layer_a.kind == INSTANCES:
        path = str(Path(settings.MEDIA_ROOT) / volume["zarr_path"])
        both = (_labeled_z(path, layer_a.name, level, layer_a.version)
                & _labeled_z(path, layer_b.name, level, layer_b.version))
        compared = bool(both[index]) if axis == "z" else both[ty * TILE: ty * TILE + plane_a.shape[0]]
    out = disagreement_tile_labels(plane_a, plane_b, kind=layer_a.kind, compared=compared)
    return tiles.render_label_tile(out[None], axis="z", index=0, ty=0, tx=0, tile=max(1, *out.shape),
                                   colors=colors if layer_a.kind == LABELS else {})
