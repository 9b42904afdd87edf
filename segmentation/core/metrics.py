"""Overlap metrics: Dice and IoU per semantic class, and per-cell Dice for instances.

All arrays are ZYX (2D arrays are accepted and treated as one plane). Nothing here
mutates its inputs or needs torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import numpy as np

__all__ = ["dice_iou", "instance_dice", "InstanceDice"]


class InstanceDice(TypedDict):
    """Result of :func:`instance_dice`.

    cells: truth id -> Dice of that cell against its best-overlapping predicted instance.
    mean: mean of ``cells`` (1.0 when truth holds no cells and prediction none either, 0.0
        when truth is empty but prediction is not).
    matched: truth id -> predicted id it was matched to (0 when unmatched).
    """

    cells: dict[int, float]
    mean: float
    matched: dict[int, int]


def _as_3d(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be 2D (YX) or 3D (ZYX), got shape {a.shape}")
    return a


def _masks(
    labels: np.ndarray,
    classes: Mapping[str, int],
    hierarchy: Mapping[str, str | None] | None,
) -> dict[str, np.ndarray]:
    """Boolean mask per class; with a hierarchy a class also covers its descendants."""
    children: dict[str, list[str]] = {name: [] for name in classes}
    if hierarchy:
        for child, parent in hierarchy.items():
            if parent is not None and parent in children and child in classes:
                children[parent].append(child)

    def descendants(name: str, seen: frozenset[str] = frozenset()) -> list[str]:
        out = [name]
        for child in children.get(name, []):
            if child not in seen:
                out.extend(descendants(child, seen | {name}))
        return out

    masks: dict[str, np.ndarray] = {}
    for name in classes:
        values = [classes[n] for n in descendants(name)]
        masks[name] = np.isin(labels, values)
    return masks


def dice_iou(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    classes: Mapping[str, int],
    slices: slice | None = None,
    hierarchy: Mapping[str, str | None] | None = None,
    ignore: int | None = None,
) -> dict[str, dict[str, float]]:
    """Dice and IoU per named class between two label volumes.

    Parameters
    ----------
    pred, truth : ndarray, shape (Z, Y, X) or (Y, X), integer
        Label volumes holding class values (e.g. 1 = background, 2 = mitochondrion).
    classes : mapping of str to int
        Class name -> label value, e.g. ``{"background": 1, "mitochondrion": 2}``.
    slices : slice, optional
        Z range to score (e.g. ``slice(10, 20)``); the whole volume by default.
    hierarchy : mapping of str to str or None, optional
        Child -> parent names. With it, a class's mask includes its descendants'
        values (a nucleolus voxel also counts as nucleus), matching nested heads.
    ignore : int, optional
        Truth value excluded from scoring (e.g. 0 for unlabeled voxels of sparse truth).

    Returns
    -------
    dict
        ``{name: {"dice": float, "iou": float, "truth_voxels": float, "pred_voxels": float}}``.
        When a class is absent from both, Dice and IoU are 1.0.

    Examples
    --------
    >>> a = np.array([[[1, 2, 2]]]); b = np.array([[[1, 2, 1]]])
    >>> round(dice_iou(a, b, classes={"m": 2})["m"]["dice"], 3)
    0.667
    """
    pred3 = _as_3d(pred, "pred")
    truth3 = _as_3d(truth, "truth")
    if pred3.shape != truth3.shape:
        raise ValueError(f"pred shape {pred3.shape} differs from truth shape {truth3.shape}")
    if not classes:
        raise ValueError("classes is empty")
    if slices is not None:
        pred3 = pred3[slices]
        truth3 = truth3[slices]
    valid = None if ignore is None else truth3 != ignore
    pm = _masks(pred3, classes, hierarchy)
    tm = _masks(truth3, classes, hierarchy)
    out: dict[str, dict[str, float]] = {}
    for name in classes:
        p, t = pm[name], tm[name]
        if valid is not None:
            p = p & valid
            t = t & valid
        inter = float(np.count_nonzero(p & t))
        ps, ts = float(np.count_nonzero(p)), float(np.count_nonzero(t))
        union = ps + ts - inter
        dice = 1.0 if ps + ts == 0 else 2.0 * inter / (ps + ts)
        iou = 1.0 if union == 0 else inter / union
        out[name] = {"dice": dice, "iou": iou, "truth_voxels": ts, "pred_voxels": ps}
    return out


def instance_dice(pred_ids: np.ndarray, truth_ids: np.ndarray) -> InstanceDice:
    """Per-cell Dice: each truth instance against the predicted instance overlapping it most.

    Parameters
    ----------
    pred_ids, truth_ids : ndarray, shape (Z, Y, X) or (Y, X), integer
        Instance label volumes, 0 = no instance.

    Returns
    -------
    InstanceDice
        ``{"cells": {truth_id: dice}, "mean": float, "matched": {truth_id: pred_id}}``;
        a truth cell that no prediction touches scores 0 and is matched to 0. One
        predicted instance may be the best match of several truth cells (a merge is
        penalised through the lower Dice of each).

    Examples
    --------
    >>> t = np.array([[1, 1, 2, 2]]); p = np.array([[5, 5, 0, 0]])
    >>> instance_dice(p, t)["cells"]
    {1: 1.0, 2: 0.0}
    """
    p = _as_3d(pred_ids, "pred_ids")
    t = _as_3d(truth_ids, "truth_ids")
    if p.shape != t.shape:
        raise ValueError(f"pred_ids shape {p.shape} differs from truth_ids shape {t.shape}")
    p = p.ravel().astype(np.int64, copy=False)
    t = t.ravel().astype(np.int64, copy=False)
    truth_labels, truth_sizes = np.unique(t[t != 0], return_counts=True)
    pred_labels, pred_sizes = np.unique(p[p != 0], return_counts=True)
    pred_size = dict(zip(pred_labels.tolist(), pred_sizes.tolist()))
    both = (t != 0) & (p != 0)
    pairs, counts = np.unique(np.stack([t[both], p[both]]), axis=1, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (tid, pid), n in zip(pairs.T.tolist(), counts.tolist()):
        if tid not in best or n > best[tid][1] or (n == best[tid][1] and pid < best[tid][0]):
            best[tid] = (pid, n)
    cells: dict[int, float] = {}
    matched: dict[int, int] = {}
    for tid, ts in zip(truth_labels.tolist(), truth_sizes.tolist()):
        pid, n = best.get(tid, (0, 0))
        matched[tid] = pid
        cells[tid] = 0.0 if pid == 0 else 2.0 * n / (ts + pred_size[pid])
    if cells:
        mean = float(np.mean(list(cells.values())))
    else:
        mean = 1.0 if pred_labels.size == 0 else 0.0
    return {"cells": cells, "mean": mean, "matched": matched}
