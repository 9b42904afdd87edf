"""Training patches from sparsely labeled slices: biased sampling and augmentation.

Patches are 2D (with ``in_slices`` Z neighbours as channels for 2.5D). Sampling favours
labeled voxels and rare classes: with probability ``label_bias`` a patch is centred near a
labeled voxel of a class drawn uniformly among the classes present (so a class painted
on 1% of the labeled voxels is seen as often as background), otherwise anywhere on a
labeled slice.

Slices are balanced: a slice's share of the patches grows with its labeled voxel count to
the power ``balance`` (per class for the centred patches). With ``balance=1`` every
labeled voxel is equally likely, so four painted 256² tiles beside one fully painted
1024² slice get a fifth of the patches; with the default ``0.5`` (square root) they get
about half, so a few corrective strokes are seen often enough to matter.

Intensity augmentation comes in two strengths (``intensity``): ``"basic"`` jitters contrast and
brightness a little and adds faint noise; ``"em"`` (:func:`em_intensity`) imitates what differs
between EM acquisitions and regions of one: staining and detector gamma, wider contrast and
brightness, defocus blur, stronger detector noise, and smooth brightness ramps (charging,
uneven illumination or section thickness).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from segmentation.core.border_weights import gap_weights
from segmentation.core.classes import ClassSpec

__all__ = ["INTENSITIES", "LabeledSlices", "PatchSampler", "augment", "elastic", "em_intensity"]

#: Strengths of the intensity augmentation: ``"basic"`` (mild jitter) or ``"em"`` (:func:`em_intensity`).
INTENSITIES = ("basic", "em")


@dataclass
class LabeledSlices:
    """Image and label regions used for training, already normalised: labeled slices, or the
    parts of them around their labels, so memory follows what was painted.

    images : per region, float32 (in_slices, H, W): the region with its Z neighbours. Regions
        differ in H and W; a stacked (n, in_slices, H, W) array serves where all are alike.
    labels : per region, integer (H, W).
    complete : bool, shape (n,): regions whose unpainted voxels count as background.
    z : the regions' slice indices in the volume (a slice may give several regions).
    boxes : each region's ``(y0, y1, x0, x1)`` in its slice (level 0), when cut.
    """

    images: Sequence[np.ndarray]
    labels: Sequence[np.ndarray]
    complete: np.ndarray
    z: list[int]
    boxes: list[tuple[int, int, int, int]] | None = None

    def subset(self, index: Sequence[int]) -> LabeledSlices:
        idx = list(index)
        boxes = [self.boxes[i] for i in idx] if self.boxes is not None else None
        return LabeledSlices([self.images[i] for i in idx], [self.labels[i] for i in idx], self.complete[idx],
                             [self.z[i] for i in idx], boxes)


def _pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad the last two axes of ``a`` up to ``size`` (edge-pad if too small)."""
    py, px = max(0, size - a.shape[-2]), max(0, size - a.shape[-1])
    if not (py or px):
        return a
    pad = [(0, 0)] * (a.ndim - 2) + [(py // 2, py - py // 2), (px // 2, px - px // 2)]
    mode: Literal["reflect", "edge"] = "reflect" if py < a.shape[-2] and px < a.shape[-1] else "edge"
    return np.pad(a, pad, mode=mode)


class PatchSampler:
    """Draws (image, target, weight) patches from :class:`LabeledSlices`.

    Parameters
    ----------
    data : LabeledSlices
    spec : ClassSpec
    patch : patch side in pixels.
    rng : numpy Generator (fixed seed -> same patches).
    label_bias : probability of centring a patch on a labeled voxel of a random class.
    balance : exponent of a slice's labeled voxel count in its sampling weight, in [0, 1]:
        1 = every labeled voxel equally likely, 0 = every labeled slice equally likely.
    elastic : probability that an augmented patch is also deformed by :func:`elastic`.
    intensity : strength of the intensity augmentation of :func:`augment`, one of :data:`INTENSITIES`.
    gap_weight : height of the extra weight on background between nearly touching objects
        (:func:`~segmentation.core.border_weights.gap_weights`); 0 adds none.
    """

    def __init__(
        self, data: LabeledSlices, spec: ClassSpec, *, patch: int, rng: np.random.Generator, label_bias: float = 0.9,
        balance: float = 0.5, elastic: float = 0.0, intensity: str = "basic", gap_weight: float = 0.0,
    ) -> None:
        if len(data.z) == 0:
            raise ValueError("no labeled slices to sample from")
        if not 0.0 <= balance <= 1.0:
            raise ValueError(f"balance must lie in [0, 1], got {balance}")
        if intensity not in INTENSITIES:
            raise ValueError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
        self.data, self.spec, self.patch, self.rng, self.label_bias, self.balance = data, spec, patch, rng, label_bias, balance
        self.elastic, self.intensity, self.gap_weight = elastic, intensity, gap_weight
        self.t_lut, self.w_lut = spec.lookup_tables()
        # coordinates of labeled voxels per class value, subsampled to bound memory
        self.coords: dict[int, np.ndarray] = {}
        # per class: where each slice's coordinates start in coords[v], and the slices' sampling weights
        self.starts: dict[int, np.ndarray] = {}
        self.class_slice_p: dict[int, np.ndarray] = {}
        values = [v for v in spec.values.values()] + [0]
        for v in values:
            pts, counts = [], np.zeros(len(data.z))
            for i in range(len(data.z)):
                if v == 0 and not data.complete[i]:
                    continue  # unlabeled voxels only count on complete slices
                yx = np.argwhere(data.labels[i] == v)
                counts[i] = len(yx)
                if len(yx) > 200_000:
                    yx = yx[rng.choice(len(yx), 200_000, replace=False)]
                pts.append(np.column_stack([np.full(len(yx), i), yx]))
            arr = np.concatenate(pts) if pts else np.zeros((0, 3), int)
            if len(arr):
                self.coords[v] = arr
                self.starts[v] = np.searchsorted(arr[:, 0], np.arange(len(data.z) + 1))
                w = counts**balance * (counts > 0)
                self.class_slice_p[v] = w / w.sum()
        weights = np.array([float((data.labels[i] != 0).sum()) + (data.labels[i].size if data.complete[i] else 0) for i in range(len(data.z))])
        weights = weights**balance * (weights > 0)
        self.slice_p = weights / weights.sum() if weights.sum() > 0 else None

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One patch: image (in_slices, P, P), target and weight (n_heads, P, P), float32."""
        d, p = self.data, self.patch
        if self.coords and self.rng.random() < self.label_bias:
            v = list(self.coords)[self.rng.integers(len(self.coords))]
            if self.balance == 1.0:
                i, cy, cx = self.coords[v][self.rng.integers(len(self.coords[v]))]
            else:
                k = int(self.rng.choice(len(self.class_slice_p[v]), p=self.class_slice_p[v]))
                a, b = self.starts[v][k], self.starts[v][k + 1]
                i, cy, cx = self.coords[v][a + self.rng.integers(b - a)]
            cy += int(self.rng.integers(-p // 4, p // 4 + 1))
            cx += int(self.rng.integers(-p // 4, p // 4 + 1))
        else:
            i = int(self.rng.choice(len(d.z), p=self.slice_p))
            cy = int(self.rng.integers(0, d.labels[i].shape[0]))
            cx = int(self.rng.integers(0, d.labels[i].shape[1]))
        H, W = d.labels[i].shape
        y0 = int(np.clip(cy - p // 2, 0, max(H - p, 0)))
        x0 = int(np.clip(cx - p // 2, 0, max(W - p, 0)))
        img = _pad_to(d.images[i][:, y0 : y0 + p, x0 : x0 + p], p)
        lab = _pad_to(d.labels[i][y0 : y0 + p, x0 : x0 + p].astype(np.int64), p)
        lab = np.where(lab < self.t_lut.shape[0], lab, 0)
        target = np.moveaxis(self.t_lut[lab], -1, 0)
        weight = np.moveaxis(self.w_lut[lab], -1, 0)
        if d.complete[i]:
            fill = lab == 0
            weight = np.where(fill[None], 1.0, weight).astype(np.float32)
        if self.gap_weight > 0:
            weight = gap_weights(target, weight, w0=self.gap_weight)
        return img, target, weight

    def batch(self, n: int, *, augment_data: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` patches stacked: (n, in_slices, P, P), (n, C, P, P), (n, C, P, P)."""
        items = [self.sample() for _ in range(n)]
        if augment_data:
            items = [augment(*it, rng=self.rng, intensity=self.intensity) for it in items]
            if self.elastic > 0:  # no draw otherwise: the patches of a seed stay what they were
                items = [elastic(*it, rng=self.rng) if self.rng.random() < self.elastic else it for it in items]
        return tuple(np.stack([np.ascontiguousarray(it[k]) for it in items]) for k in range(3))  # type: ignore[return-value]


def augment(
    image: np.ndarray, target: np.ndarray, weight: np.ndarray, *, rng: np.random.Generator, intensity: str = "basic",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random 90° rotation, flips, Z-order flip (2.5D), then intensity: with ``"basic"``
    contrast/brightness jitter and faint noise, with ``"em"`` :func:`em_intensity`.

    image : (in_slices, P, P) normalised float32; target, weight : (C, P, P). Returns new arrays;
    targets and weights only turn with the image.
    """
    k = int(rng.integers(4))
    arrays = [np.rot90(a, k, axes=(-2, -1)) for a in (image, target, weight)]
    if rng.random() < 0.5:
        arrays = [a[..., ::-1] for a in arrays]
    if rng.random() < 0.5:
        arrays = [a[..., ::-1, :] for a in arrays]
    img = arrays[0]
    if img.shape[0] > 1 and rng.random() < 0.5:
        img = img[::-1]
    if intensity == "em":
        return em_intensity(np.ascontiguousarray(img), rng=rng), arrays[1], arrays[2]
    if intensity != "basic":
        raise ValueError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
    contrast = float(np.exp(rng.uniform(-0.25, 0.25)))
    brightness = float(rng.uniform(-0.15, 0.15))
    img = img * contrast + brightness
    if rng.random() < 0.3:
        img = img + rng.normal(0.0, 0.03, img.shape).astype(np.float32)
    return img.astype(np.float32), arrays[1], arrays[2]


def em_intensity(image: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """The image of a patch as another EM acquisition, or another part of the same one, might show it.

    On an image normalised to about [-0.5, 0.5] (1st to 99th percentile), each with its own chance:

    * gamma 0.67-1.5 (p 0.5): staining and detector response are not linear;
    * defocus blur, Gaussian sigma 0.5-1.5 pixels in Y and X (p 0.3);
    * a smooth brightness ramp (p 0.5), up to ±0.2 across the patch: a random 3 x 3 grid
      interpolated cubically, for charging, uneven illumination and section thickness;
    * contrast x exp(U(-0.4, 0.4)) and brightness U(-0.25, 0.25) (always): wider than ``"basic"``;
    * Gaussian noise of sigma 0.01-0.1 (p 0.5), a short dwell time's detector noise.

    image : (in_slices, P, P); every slice gets the same change. Returns a new float32 array.
    """
    img: np.ndarray = np.asarray(image, np.float32)
    if rng.random() < 0.5:
        gamma = float(np.exp(rng.uniform(-0.4, 0.4)))
        img = np.clip(img + 0.5, 0.0, 1.0) ** gamma - 0.5
    if rng.random() < 0.3:
        sigma = float(rng.uniform(0.5, 1.5))
        img = ndimage.gaussian_filter(img, (0.0,) + (sigma,) * 2, mode="reflect")
    if rng.random() < 0.5:
        h, w = img.shape[-2:]
        coarse = rng.uniform(-1.0, 1.0, (3, 3))
        field = ndimage.zoom(coarse, (h / 3, w / 3), order=3, mode="nearest", grid_mode=True)[:h, :w]
        peak = float(np.abs(field).max())
        img = img + (rng.uniform(0.0, 0.2) / peak if peak > 0 else 0.0) * field
    img = img * float(np.exp(rng.uniform(-0.4, 0.4))) + float(rng.uniform(-0.25, 0.25))
    if rng.random() < 0.5:
        img = img + rng.normal(0.0, rng.uniform(0.01, 0.1), img.shape)
    return np.ascontiguousarray(img, dtype=np.float32)


def elastic(
    image: np.ndarray, target: np.ndarray, weight: np.ndarray, *, rng: np.random.Generator,
    amplitude: float = 0.03, grid: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth random deformation of a patch (elastic augmentation).

    Displacements are drawn on a ``grid`` x ``grid`` lattice (standard deviation ``amplitude``
    times the patch side) and interpolated cubically, so membranes bend without tearing. The
    image is resampled linearly, targets and weights by nearest neighbour, and what is pulled
    in from outside the patch gets weight 0 (it was never labeled there).
    """
    h, w = image.shape[-2:]
    coarse = rng.normal(0.0, amplitude * max(h, w), (2, grid, grid))
    shift = [ndimage.zoom(c, (h / grid, w / grid), order=3, mode="nearest", grid_mode=True)[:h, :w] for c in coarse]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = np.stack([yy + shift[0], xx + shift[1]])

    def warp(a: np.ndarray, order: int, mode: str) -> np.ndarray:
        return np.stack([ndimage.map_coordinates(c, coords, order=order, mode=mode, cval=0.0) for c in a]).astype(a.dtype)

    return warp(image, 1, "reflect"), warp(target, 0, "nearest"), warp(weight, 0, "constant")
