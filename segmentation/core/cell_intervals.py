"""Cell fusion one key-slice interval at a time, slice by slice, for volumes larger than memory.

:func:`segmentation.core.cells.segment_cells` holds the whole volume. Here the same
fusion is cut where it is independent: every slice is carried from its nearer key
slice only, so the slices between two consecutive keys (an *interval*) need nothing
but the image, interior and keys of that stretch. :func:`fuse_interval` reads them one
slice at a time from any array-like (numpy, zarr) and hands each fused slice to a
sink as soon as it is made, holding a few slices; intervals can run in any order, in
any process. :func:`stitch` then gives the interior regions no propagated cell reached
(protrusions cut by the plane) their cells by tracking, again a few slices at a time.

The result equals ``segment_cells(..., method="fusion")`` voxel for voxel, the
unresolved regions included.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from segmentation.core.cell_tracking import Resolution, resolve_unreached
from segmentation.core.cells import fuse_slice, interior_mask
from segmentation.core.propagation import (
    FlowMethod,
    compute_flow,
    flow_engine,
    key_slice_indices,
    nearest_keys,
    normalise_slice,
    warp_labels,
)

__all__ = ["Interval", "fuse_interval", "key_intervals", "segment_cells_by_intervals", "stitch"]

SliceSink = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class Interval:
    """Slices ``start .. stop - 1`` and the keys they are carried from.

    below / above: the key slice under ``start`` (``start`` itself when it is a key) and
    the one at ``stop`` (outside the interval, read only), None at the volume's ends.
    """

    start: int
    stop: int
    below: int | None
    above: int | None


def key_intervals(n_slices: int, key_indices: Sequence[int]) -> list[Interval]:
    """Cut ``0 .. n_slices - 1`` at the key slices: each key starts an interval that ends before the next.

    Examples
    --------
    >>> [(i.start, i.stop, i.below, i.above) for i in key_intervals(10, [2, 6])]
    [(0, 2, None, 2), (2, 6, 2, 6), (6, 10, 6, None)]
    """
    ks = sorted(set(int(k) for k in key_indices))
    if not ks:
        raise ValueError("no key slice: paint at least one")
    nearest_keys(n_slices, ks)  # validates the range
    out = [Interval(0, ks[0], None, ks[0])] if ks[0] > 0 else []
    for lo, hi in zip(ks, ks[1:] + [None]):
        out.append(Interval(lo, n_slices if hi is None else hi, lo, hi))
    return out


def fuse_interval(
    image: Any,
    interior: Any,
    keys: Any,
    interval: Interval,
    sink: SliceSink,
    *,
    flow: FlowMethod = "dis",
    threshold: float = 0.5,
    shrink: int = 2,
) -> int:
    """Fuse the slices of one interval, reading one slice at a time, and hand each to ``sink(z, ids)``.

    Each slice takes the labels carried from its nearer key (ties: the lower), exactly
    as :func:`segmentation.core.propagation.propagate_labels` does, split along the
    membranes inside the interior as :func:`segmentation.core.cells.segment_cells` does.
    Interior regions no cell reached stay 0 until :func:`stitch`.

    Returns
    -------
    int
        The largest id written (0 if none), for :func:`stitch`'s new ids.
    """
    lo, hi, below, above = interval.start, interval.stop, interval.below, interval.above
    engine = flow_engine(flow)
    top = 0

    def key_labels(z: int) -> np.ndarray:
        lab = np.asarray(keys[z])
        if lab.dtype.kind not in "ui":
            raise TypeError(f"keys must hold integer ids, got dtype {lab.dtype}")
        if lab.dtype.kind == "i" and lab.size and int(lab.min()) < 0:
            raise ValueError(f"keys hold negative id {int(lab.min())} on slice {z}")
        return lab.astype(np.uint32)

    def emit(z: int, plane: np.ndarray, propagated: np.ndarray, key: np.ndarray | None) -> None:
        nonlocal top
        mask = interior_mask(np.asarray(interior[z])[None], threshold=threshold)[0]
        ids = fuse_slice(plane, mask, propagated, key, shrink=shrink)
        top = max(top, int(ids.max(initial=0)))
        sink(z, ids)

    def walk(start: int, zs: Iterable[int], emit_start: bool) -> None:
        """Carry the key ``start`` through ``zs`` (consecutive slices), emitting each."""
        labels = key_labels(start)
        plane = np.asarray(image[start])
        prev = normalise_slice(plane)
        if emit_start:
            emit(start, plane, labels, labels)
        for z in zs:
            plane = np.asarray(image[z])
            cur = normalise_slice(plane)
            labels = warp_labels(labels, compute_flow(cur, prev, method=flow, engine=engine))
            emit(z, plane, labels, None)
            prev = cur

    if below is None and above is None:
        raise ValueError("an interval needs a key on at least one side")
    if below is None:  # slices under the first key: carried down from it
        walk(int(above), range(hi - 1, lo - 1, -1), emit_start=False)  # type: ignore[arg-type]
        return top
    if above is None:  # the last key and the slices over it
        walk(below, range(lo + 1, hi), emit_start=True)
        return top
    mid = (below + above) // 2  # slices below+1 .. mid are nearer below (ties go to below)
    walk(below, range(lo + 1, mid + 1), emit_start=True)
    walk(above, range(above - 1, mid, -1), emit_start=False)
    return top


class _Mask:
    """An interior given as a mask, integers or probabilities, read as a bool mask a slice at a time."""

    def __init__(self, interior: Any, threshold: float) -> None:
        self.interior, self.threshold, self.shape = interior, threshold, interior.shape

    def __getitem__(self, z: int) -> np.ndarray:
        return interior_mask(np.asarray(self.interior[z])[None], threshold=self.threshold)[0]


def stitch(
    cells: Any,
    interior: Any,
    *,
    first_new_id: int,
    threshold: float = 0.5,
    min_iou: float = 0.2,
    min_coverage: float = 0.5,
    max_gap: float = 5.0,
) -> Resolution:
    """Place the interior regions no propagated cell reached, in place in ``cells``, slice by slice.

    ``cells`` (Z, Y, X) is what the intervals wrote (any array-like that takes slice
    assignment); ``first_new_id`` is one above the largest id any interval wrote. See
    :func:`segmentation.core.cell_tracking.resolve_unreached`: a few slices in memory
    at a time, whatever the depth.
    """
    return resolve_unreached(
        cells, _Mask(interior, threshold), first_new_id=first_new_id, min_iou=min_iou, min_coverage=min_coverage,
        max_gap=max_gap,
    )


def segment_cells_by_intervals(
    image: Any,
    interior: Any,
    keys: Any,
    cells: Any,
    *,
    key_indices: Sequence[int] | None = None,
    flow: FlowMethod = "dis",
    threshold: float = 0.5,
    shrink: int = 2,
    max_gap: float = 5.0,
) -> Resolution:
    """The fusion of :func:`segmentation.core.cells.segment_cells` written into ``cells``, interval by interval.

    ``cells`` is any (Z, Y, X) array-like taking slice assignment (numpy, zarr); the
    intervals run one after another here, :func:`fuse_interval` and :func:`stitch`
    let a caller spread them over processes or workers.
    """
    shape = tuple(int(s) for s in image.shape)
    if len(shape) != 3 or tuple(interior.shape) != shape or tuple(keys.shape) != shape or tuple(cells.shape) != shape:
        raise ValueError("image, interior, keys and cells must share one ZYX shape")
    ks = key_slice_indices(keys) if key_indices is None else [int(k) for k in key_indices]

    def sink(z: int, ids: np.ndarray) -> None:
        cells[z] = ids

    top = 0
    for interval in key_intervals(shape[0], ks):
        top = max(top, fuse_interval(image, interior, keys, interval, sink, flow=flow, threshold=threshold,
                                     shrink=shrink))
    return stitch(cells, interior, first_new_id=top + 1, threshold=threshold, max_gap=max_gap)
