"""Training labels as a retrain reads them: the manual layer, painted cells and approved review labels.

Pure numpy over array-likes (zarr arrays, numpy arrays): the app opens the layers and
hands them here; `labels_hash` fingerprints what a model version was trained on.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotations.imaging import chunkio


@dataclass(frozen=True)
class TrustedLabels:
    """Approved labels of a reviewed layer (chosen by the app's reviews).

    labels : array-like (Z, Y, X), the reviewed layer; kind : "labels" (class values) or
    "instances" (cell ids, trusted as the cell class); slices : approved z slices (all
    their labels are trusted); cells : approved cell ids (their voxels are trusted).
    """

    labels: Any
    kind: str
    slices: frozenset[int] = frozenset()
    cells: frozenset[int] = frozenset()


class TrainingLabels:
    """The manual layer with painted cells as the cell class, read slice by slice.

    An array-like of shape (Z, Y, X) for :func:`segmentation.core.training.train`;
    ``labels[z]`` (or ``labels[z, ys, xs]``) reads the manual layer there and, on slices
    where the cells layer holds ids (key slices, where every cell is painted):

    * puts ``cell_value`` where a cell is painted and the manual layer holds 0 or background
      (background inside a cell means "none of the organelles", which the cell class says too);
    * puts ``background`` where no cell is painted and the manual layer holds 0, since
      every class lies inside a cell.

    Other slices are the manual layer unchanged. Before that, ``trusted`` sources (approved
    review items) fill the voxels where the manual layer holds 0, as if painted there:
    class layers with their values, instance layers with ``cell_value`` (skipped when 0).
    """

    def __init__(self, manual: Any, cells: Any = None, *, cell_value: int = 0, background: int = 0,
                 trusted: Sequence[TrustedLabels] = ()) -> None:
        self.manual, self.cells = manual, cells
        self.cell_value, self.background = int(cell_value), int(background)
        self.shape = tuple(int(s) for s in manual.shape)
        self.dtype = np.dtype(manual.dtype)
        self.ndim = len(self.shape)
        self.trusted = tuple(trusted)
        for source in self.trusted:
            if source.kind not in ("labels", "instances"):
                raise ValueError(f"trusted kind {source.kind!r} is not 'labels' or 'instances'")
            if tuple(int(n) for n in source.labels.shape) != self.shape:
                raise ValueError(f"trusted layer shape {tuple(source.labels.shape)} differs from {self.shape}")

    def _with_trusted(self, z: int, m: np.ndarray) -> np.ndarray:
        for source in self.trusted:
            on_slice = z in source.slices
            if not on_slice and not source.cells:
                continue
            if source.kind == "instances" and not self.cell_value:
                continue
            t = np.asarray(source.labels[z])
            if source.kind == "labels":
                if on_slice:
                    m = np.where((m == 0) & (t != 0), t, m).astype(self.dtype, copy=False)
                continue
            chosen = (t != 0) if on_slice else np.isin(t, list(source.cells))
            m = np.where((m == 0) & chosen, self.cell_value, m).astype(self.dtype, copy=False)
        return m

    def _plane(self, z: int) -> np.ndarray:
        m = self._with_trusted(z, np.asarray(self.manual[z]))
        if self.cells is None:
            return m
        c = np.asarray(self.cells[z])
        if not c.any():
            return m
        open_ = (m == 0) | (m == self.background) if self.background else (m == 0)
        out = np.where((c > 0) & open_, self.cell_value, m)
        if self.background:
            out = np.where((c == 0) & (m == 0), self.background, out)
        return out.astype(self.dtype, copy=False)

    def candidate_slices(self) -> set[int] | None:
        """The slices that may hold a label: those inside chunks any layer read here has on
        disk (None when a layer's storage cannot tell, so every slice may)."""
        found: set[int] = set()
        for array in (self.manual, self.cells, *(source.labels for source in self.trusted)):
            if array is None:
                continue
            stored = chunkio.stored_z_slices(array)
            if stored is None:
                return None
            found |= stored
        return found

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._plane(int(key))
        if isinstance(key, tuple) and key and isinstance(key[0], (int, np.integer)):
            return self._plane(int(key[0]))[key[1:]]
        raise TypeError(f"TrainingLabels reads one z slice at a time, not {key!r}")


def labels_hash(labels: Any, zs: list[int], complete: list[int], *,
                trusted: Sequence[Mapping[str, Any]] = ()) -> str:
    """sha256 of the labeled slices (index and content), the complete-slice marks and the
    trusted (approved) review items used."""
    digest = hashlib.sha256()
    for z in sorted(zs):
        plane = np.ascontiguousarray(np.asarray(labels[z]))
        digest.update(f"z{z}:{plane.dtype.str}:{plane.shape}".encode())
        digest.update(plane.tobytes())
    digest.update(("complete:" + ",".join(map(str, sorted(complete)))).encode())
    if trusted:
        digest.update(("trusted:" + json.dumps(list(trusted), sort_keys=True)).encode())
    return digest.hexdigest()


__all__ = ["TrainingLabels", "TrustedLabels", "labels_hash"]
