"""Where to label next: model uncertainty per tile of the unlabeled part of a volume.

Per voxel and class, uncertainty is the binary entropy (bits, 0..1) of the predicted
probability, averaged over the flip test-time augmentations, plus (with ``tta=True``) the
mean absolute disagreement of the flips with their mean (0..0.5), capped at 1 so that every
score lies within [0, 1] (:func:`flip_uncertainty`). Voxels already labeled do not
count. The probabilities are those of the block-independent prediction
(:mod:`segmentation.core.blockwise`), so the segment job takes the scores from its one
pass over the volume, block by block (:func:`block_tile_sums`, added up by :func:`tile_grid`).
Tiles are ``tile x tile`` squares of one Z slice on a fixed grid; a tile's score is
the mean uncertainty of its unlabeled voxels (averaged over classes, or per class with
``per_class=True``). Tiles whose labeled share exceeds ``max_labeled_fraction`` are
skipped. Ranking is greedy with suppression: a tile is passed over while a better one
lies within ``min_distance`` pixels of it in 3D, slices counted at their thickness
(``z_spacing`` YX pixels a slice), or while its slice already holds ``max_per_slice``
picks, or while a tile someone already painted in lies within ``painted_distance`` of it
(default: one tile, so the same spot on a nearby slice), so suggestions spread over the
volume, over slices and away from what was corrected before; if that leaves fewer than
``k``, passed-over tiles fill up, first those only held back by painted tiles, then those
held back by the per-slice limit, then the rest, each in score order. Counting slices at
their thickness matters on serial sections: an organelle runs through many 40 nm sections,
so the same spot a few sections away is the same lesson (on the SBEM crop, counting slices
instead of distance lets most of the four picks crowd into one dense corner, and painting
them teaches less than four random tiles; counted physically, they beat random ones on
average: the loop tables of docs/ACCURACY.md). The same holds across rounds: without the
painted rule, later rounds went back to the spots painted before, a slice or two away.

What the score ranks: the tile mean of the entropy follows the tile's real voxel error rate
(Spearman 0.82 over the 128 pool tiles of the SBEM crop, 0.87 on the ssTEM stack), and the
four best-ranked tiles hold 2.4x (SBEM) and 4.7x (ssTEM) the error of the average tile
(``benchmarks/suggestion_errors.py``; docs/ACCURACY.md). Tiles with little foreground are not pushed down on purpose: a tile of background the model
half-believes is mitochondrion (myelin, for one) is exactly what needs painting.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from segmentation.core.inference import PredictProgress
from segmentation.core.modelfile import TrainedModel, load_model, resolve_device

__all__ = ["Suggestion", "TileSums", "binary_entropy", "block_tile_sums", "edge_band", "flip_uncertainty", "rank_tiles",
           "suggest_regions", "tile_grid", "tile_scores"]


@dataclass(frozen=True)
class Suggestion:
    """A region to label: slice ``z``, rows ``y0:y1``, columns ``x0:x1``, score (higher = less sure)."""

    z: int
    y0: int
    x0: int
    y1: int
    x1: int
    score: float
    cls: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class"] = d.pop("cls")
        if d["class"] is None:
            del d["class"]
        return d


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli probabilities ``p`` (any shape), 0 at 0/1, 1 at 0.5.

    float32 throughout (a segment block computes it for every voxel and head; float64 cost
    twice the time for digits a tile mean does not use)."""
    p = np.clip(np.asarray(p, np.float32), np.float32(1e-7), np.float32(1 - 1e-7))
    q = 1 - p
    return -(p * np.log2(p) + q * np.log2(q))


def flip_uncertainty(probs: np.ndarray) -> np.ndarray:
    """Uncertainty in [0, 1] from the probabilities of F flipped predictions.

    Parameters
    ----------
    probs : float array, shape (F, ...), values in [0, 1]; F = 1 without test-time flips.

    Returns
    -------
    float32 array of shape ``probs.shape[1:]``: the binary entropy of the flips' mean, plus
    their mean absolute disagreement with it when F > 1, capped at 1. A voxel is at most
    completely unsure: flips that disagree around a mean near 0.5 (entropy 1 already) added
    up to 0.5 on top, and suggestion scores, tile means of this, came out above 1. Below the
    cap the sum is unchanged, so rankings differ only among voxels that reach it.

    Examples
    --------
    >>> float(flip_uncertainty(np.array([0.0, 1.0, 0.0, 1.0])))
    1.0
    """
    probs = np.asarray(probs)
    mean = probs.mean(0)
    u = binary_entropy(mean)
    if probs.shape[0] > 1:
        u = np.minimum(u + np.abs(probs - mean).mean(0), 1.0)
    return u.astype(np.float32)


def edge_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a 2D edge of ``mask`` (bool, (..., Y, X)), slice by slice."""
    if width < 1:
        return np.zeros(mask.shape, bool)
    flat = mask.reshape((-1,) + mask.shape[-2:])
    size = 2 * width + 1
    band = [ndimage.maximum_filter(m, size) & ~ndimage.minimum_filter(m, size) for m in flat]
    return np.stack(band).reshape(mask.shape)


@dataclass
class TileSums:
    """Uncertainty sums of the tiles one block overlaps, to be added up over blocks.

    The block's tiles start at tile-grid index (``z0``, ``ty0``, ``tx0``); ``sums`` (nz, nty,
    ntx, n_heads) adds up the uncertainty of unlabeled voxels, ``counts`` counts them and
    ``areas`` counts every voxel the block holds of each tile, all float64.
    """

    z0: int
    ty0: int
    tx0: int
    sums: np.ndarray
    counts: np.ndarray
    areas: np.ndarray


def block_tile_sums(u: np.ndarray, core: tuple[slice, slice, slice], *, tile: int,
                    free: np.ndarray | None = None) -> TileSums:
    """The tile sums of one block from its per-voxel uncertainty.

    u : float32, shape (n_heads, bz, by, bx), the uncertainty of the block ``core`` (ZYX slices).
    free : bool (bz, by, bx), True where unlabeled; None: every voxel.
    Tiles are ``tile x tile`` squares of one slice on a grid from the volume's origin; a tile
    cut by a block edge gets a part from each block, which :func:`tile_grid` adds up.
    """
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    zs, ys, xs = core
    C, nz = u.shape[0], u.shape[1]
    ty0, ty1 = ys.start // tile, -(-ys.stop // tile)
    tx0, tx1 = xs.start // tile, -(-xs.stop // tile)
    sums = np.zeros((nz, ty1 - ty0, tx1 - tx0, C), np.float64)
    counts = np.zeros((nz, ty1 - ty0, tx1 - tx0), np.float64)
    areas = np.zeros_like(counts)
    if free is None:
        free = np.ones(u.shape[1:], bool)
    for ty in range(ty0, ty1):
        a0, a1 = max(ty * tile, ys.start) - ys.start, min((ty + 1) * tile, ys.stop) - ys.start
        for tx in range(tx0, tx1):
            b0, b1 = max(tx * tile, xs.start) - xs.start, min((tx + 1) * tile, xs.stop) - xs.start
            f = free[:, a0:a1, b0:b1]
            part = np.where(f, u[:, :, a0:a1, b0:b1], 0.0).astype(np.float64)
            for z in range(nz):  # one contiguous row per head: the same summation order in any block
                sums[z, ty - ty0, tx - tx0] = np.ascontiguousarray(part[:, z]).reshape(C, -1).sum(axis=1)
            counts[:, ty - ty0, tx - tx0] = f.sum(axis=(1, 2))
            areas[:, ty - ty0, tx - tx0] = f[0].size
    return TileSums(zs.start, ty0, tx0, sums, counts, areas)


def tile_grid(parts: Any, *, shape: tuple[int, int, int], tile: int, heads: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile scores and labeled fractions of a volume from its blocks' :class:`TileSums`.

    parts : iterable of TileSums, added in the order given (give them in block order for
        results that do not depend on which block finished first).
    Returns scores (Z, ny, nx, heads) float32, NaN where a tile has no unlabeled voxel, and the
    labeled fraction (Z, ny, nx) float32.
    """
    Z, Y, X = shape
    ny, nx = -(-Y // tile), -(-X // tile)
    sums = np.zeros((Z, ny, nx, heads), np.float64)
    counts = np.zeros((Z, ny, nx), np.float64)
    areas = np.zeros((Z, ny, nx), np.float64)
    for p in parts:
        nz, nty, ntx = p.counts.shape
        box = (slice(p.z0, p.z0 + nz), slice(p.ty0, p.ty0 + nty), slice(p.tx0, p.tx0 + ntx))
        sums[box] += p.sums
        counts[box] += p.counts
        areas[box] += p.areas
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (sums / counts[..., None]).astype(np.float32)
    return scores, (1.0 - counts / areas).astype(np.float32)


def tile_scores(
    model: TrainedModel | str | os.PathLike[str],
    image: Any,
    *,
    labels: Any = None,
    tile: int = 256,
    tta: bool = True,
    device: str | torch.device = "auto",
    lattice: Any = None,
    block: tuple[int, int, int] | None = None,
    edge: int = 0,
    on_progress: Callable[[PredictProgress], None] | None = None,
    progress_bar: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean uncertainty of the unlabeled voxels of every tile, in a pass of its own.

    The segment job gets the same scores from its prediction pass (each block's
    :func:`block_tile_sums` of :func:`segmentation.core.blockwise.block_probabilities`);
    this runs that pass without writing labels, for the CLI's ``suggest``.

    Parameters
    ----------
    image : array-like, shape (Z, Y, X)
    labels : array-like of the same shape, 0 = unlabeled, optional.
    lattice : segmentation.core.blockwise.Lattice, the windows (default: its defaults).
    block : block size (Z, Y, X), a multiple of the lattice cell in Y and X; the default
        holds 4 slices and 1024 px or one cell, whichever is larger.
    edge : voxels within this many pixels of a predicted object's boundary count as certain
        (the band is found per block). Every boundary carries a band of p ~ 0.5 that painting
        cannot make sharper than the truth's own boundary noise, so by default a tile scores
        partly for how much boundary it holds. Measured in the loop benchmark
        (docs/ACCURACY.md): no better than random tiles.

    Returns
    -------
    scores : float32, shape (Z, ceil(Y/tile), ceil(X/tile), n_heads); NaN where a tile has no unlabeled voxel.
    labeled_fraction : float32, shape (Z, ceil(Y/tile), ceil(X/tile)).
    """
    from segmentation.core.blocks import block_plan
    from segmentation.core.blockwise import Lattice, block_probabilities

    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    dev = resolve_device(device)
    trained = load_model(model, device=dev)
    if len(image.shape) != 3:
        raise ValueError(f"image must be ZYX, got shape {tuple(image.shape)}")
    if labels is not None and tuple(labels.shape) != tuple(image.shape):
        raise ValueError(f"labels shape {tuple(labels.shape)} differs from image shape {tuple(image.shape)}")
    lattice = lattice or Lattice()
    Z, Y, X = (int(s) for s in image.shape)
    shape = (Z, Y, X)
    span = lattice.cell * max(1, 1024 // lattice.cell)
    plan = block_plan(shape, block=block or (4, span, span), align=[(1, lattice.cell, lattice.cell)])
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), desc="uncertainty", unit="block", leave=False)
    parts = []
    for b in plan:
        probs, u = block_probabilities(trained, image, b.core, lattice=lattice, tta=tta, device=dev, uncertainty=True)
        assert u is not None
        if edge:
            u[edge_band(probs > 0.5, edge)] = 0.0
        zs, ys, xs = b.core
        free = None if labels is None else np.asarray(labels[zs, ys, xs]) == 0
        parts.append(block_tile_sums(u, b.core, tile=tile, free=free))
        if bar is not None:
            bar.update(1)
        if on_progress is not None:
            on_progress(PredictProgress(b.index + 1, len(plan), 0.0))
    if bar is not None:
        bar.close()
    return tile_grid(parts, shape=shape, tile=tile, heads=trained.config.out_channels)


def rank_tiles(
    scores: np.ndarray,
    *,
    k: int,
    tile: int,
    shape: tuple[int, int, int],
    labeled_fraction: np.ndarray | None = None,
    max_labeled_fraction: float = 0.5,
    min_distance: float | None = None,
    z_spacing: float = 1.0,
    max_per_slice: int = 1,
    painted_distance: float | None = None,
    cls: str | None = None,
) -> list[Suggestion]:
    """Pick ``k`` tiles from a (Z, ny, nx) score grid, best first, spread out (module docstring).

    A tile with any labeled voxel (``labeled_fraction`` > 0) counts as painted; tiles closer
    than ``painted_distance`` (default ``tile``) to one come after all others."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if max_per_slice < 1:
        raise ValueError(f"max_per_slice must be positive, got {max_per_slice}")
    if not 0 < z_spacing < np.inf:
        raise ValueError(f"z_spacing must be positive and finite, got {z_spacing}")
    s = np.array(scores, np.float64, copy=True)
    if labeled_fraction is not None:
        s[labeled_fraction > max_labeled_fraction] = np.nan
    ranked = np.unravel_index(np.argsort(-np.nan_to_num(s, nan=-np.inf), axis=None), s.shape)
    order = [(int(z), int(y), int(x)) for z, y, x in zip(*ranked) if np.isfinite(s[z, y, x])]
    min_d = 1.5 * tile if min_distance is None else float(min_distance)
    near = _near_painted(labeled_fraction, tile=tile, z_spacing=z_spacing,
                         distance=tile if painted_distance is None else float(painted_distance))
    picked: list[tuple[int, int, int]] = []

    def close(z: int, ty: int, tx: int) -> bool:
        return any(np.sqrt(((z - pz) * z_spacing) ** 2 + ((ty - py) * tile) ** 2 + ((tx - px) * tile) ** 2) < min_d
                   for pz, py, px in picked)

    def crowded(z: int, ty: int, tx: int) -> bool:
        return sum(pz == z for pz, _, _ in picked) >= max_per_slice

    def by_painted(z: int, ty: int, tx: int) -> bool:
        return near is not None and bool(near[z, ty, tx])

    rules = [close, crowded, by_painted]  # relaxed from the last while fewer than k are picked
    for n in range(len(rules), -1, -1):
        held: list[tuple[int, int, int]] = []
        for t in order:
            if len(picked) == k:
                break
            (held if any(rule(*t) for rule in rules[:n]) else picked).append(t)
        if len(picked) == k:
            break
        order = held
    Z, Y, X = shape
    return [
        Suggestion(z, ty * tile, tx * tile, min((ty + 1) * tile, Y), min((tx + 1) * tile, X), float(s[z, ty, tx]), cls)
        for z, ty, tx in picked
    ]


def _near_painted(labeled_fraction: np.ndarray | None, *, tile: int, z_spacing: float,
                  distance: float) -> np.ndarray | None:
    """True where a tile lies within ``distance`` (YX pixels, slices at ``z_spacing``) of a tile
    with labeled voxels, itself included; None when nothing is labeled."""
    if labeled_fraction is None:
        return None
    painted = np.asarray(labeled_fraction) > 0
    if not painted.any():
        return None
    gap = ndimage.distance_transform_edt(~painted, sampling=(z_spacing, tile, tile))
    return gap < distance


def suggest_regions(
    model: TrainedModel | str | os.PathLike[str],
    image: Any,
    *,
    labels: Any = None,
    k: int = 4,
    tile: int = 256,
    per_class: bool = False,
    tta: bool = True,
    device: str | torch.device = "auto",
    max_labeled_fraction: float = 0.5,
    min_distance: float | None = None,
    z_spacing: float = 1.0,
    max_per_slice: int = 1,
    progress_bar: bool = False,
    on_progress: Callable[[PredictProgress], None] | None = None,
) -> list[Suggestion]:
    """The ``k`` tiles the model is least sure of, best first, spread over the volume.

    Parameters
    ----------
    model : TrainedModel or model file
    image : array-like, shape (Z, Y, X) or (Y, X)
    labels : array-like of the image's shape, 0 = unlabeled; labeled tiles are skipped.
    k, tile : how many regions, and their side in pixels.
    per_class : rank each class's uncertainty separately: ``k`` regions per class,
        each tagged with its class, classes in head order.
    max_labeled_fraction, min_distance, max_per_slice : see :func:`rank_tiles` and the
        module docstring (at most ``max_per_slice`` tiles of one slice while other slices
        still offer one).
    z_spacing : slice thickness over YX pixel size (voxel Z / voxel X), so that the spread
        is physical: 1 for isotropic FIB-SEM, about 6.8 for 40 nm sections of 5.9 nm pixels.

    Returns
    -------
    list of Suggestion (``.to_dict()`` gives ``{"z", "y0", "x0", "y1", "x1", "score"}``)

    Examples
    --------
    >>> [s.to_dict() for s in suggest_regions("m.pt", vol, labels=lab, k=4)]  # doctest: +SKIP
    """
    if len(image.shape) == 2:
        image = np.asarray(image)[None]
        labels = None if labels is None else np.asarray(labels)[None]
    trained = load_model(model, device=resolve_device(device))
    scores, frac = tile_scores(trained, image, labels=labels, tile=tile, tta=tta, device=device, progress_bar=progress_bar, on_progress=on_progress)
    shape = tuple(int(s) for s in image.shape)
    common = dict(k=k, tile=tile, shape=shape, labeled_fraction=frac, max_labeled_fraction=max_labeled_fraction, min_distance=min_distance, z_spacing=z_spacing, max_per_slice=max_per_slice)
    if not per_class:
        return rank_tiles(scores.mean(-1), **common)  # type: ignore[arg-type]
    out: list[Suggestion] = []
    for j, name in enumerate(trained.classes.heads):
        out += rank_tiles(scores[..., j], cls=name, **common)  # type: ignore[arg-type]
    return out
