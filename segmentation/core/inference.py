"""Blockwise prediction of any volume size, streaming from and to array-likes (numpy, zarr).

Stages (timed into :class:`PredictStats`): load block -> normalise -> sliding window with
blending -> post-process -> write.

Each block (the unit of work: one Celery task, one row of zarr chunks) is grown by a halo
of context on every side (``halo``, default ``overlap``; clipped at the volume edge) and
tiled with the fewest windows of at most ``window`` pixels that overlap by at least
``overlap``; overlapping windows are blended with a cosine ramp and the halo is cropped.
Memory is bounded by the block plus its halo, not the volume, and the only work repeated
between blocks is the halo. Because the tiling adapts to the block, blockwise and
whole-volume predictions differ slightly near window edges (the network zero-pads at
window borders); elsewhere they agree to float precision.

2.5D models get ``in_slices // 2`` neighbouring slices on each side, the volume's first and
last slice repeated beyond its ends.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from segmentation.core.classes import ClassSpec
from segmentation.core.modelfile import TrainedModel, load_model, resolve_device

__all__ = [
    "PostProcess",
    "PredictProgress",
    "PredictStats",
    "block_regions",
    "predict_block",
    "predict_probabilities",
    "predict_volume",
    "postprocess_masks",
]

Region = tuple[slice, slice, slice]


@dataclass(frozen=True)
class PredictProgress:
    """Reported after each block: ``done`` of ``total`` blocks, seconds elapsed."""

    done: int
    total: int
    elapsed_s: float


@dataclass
class PredictStats:
    """Seconds spent per stage and voxels predicted, filled in by the predict functions."""

    load_s: float = 0.0
    forward_s: float = 0.0
    postprocess_s: float = 0.0
    write_s: float = 0.0
    voxels: int = 0
    blocks: int = 0


@dataclass(frozen=True)
class PostProcess:
    """Per-class clean-up of predicted masks, slice by slice (2D, like the network).

    fill_holes : classes whose enclosed holes are filled. Nucleolus is left out by default
        because its fenestrations are real holes (paper Fig. 2E).
    min_size : class -> smallest 2D object kept, in pixels. The rest: what the model was taught
        (:meth:`taught`), else ``default_min_size``. Objects touching an inner block edge are
        always kept, since they may continue in the next block.
    Nesting (nucleolus inside nucleus, ...) is applied after both, from the hierarchy.
    """

    fill_holes: frozenset[str] = frozenset({"nucleus", "cell", "mitochondrion", "lysosome", "endosome"})
    min_size: dict[str, int] = field(default_factory=dict)
    default_min_size: int = 16

    def taught(self, meta: Mapping[str, Any]) -> PostProcess:
        """This clean-up with the object sizes a model's training labels showed (its ``meta``).

        A class with objects painted whole (``meta["object_floor_px"]``) loses the predicted
        objects smaller than nearly all of those: specks the labels never had, which cost HeLa's
        unseen pages the most (docs/ACCURACY.md). Otherwise ``default_min_size``, but never more
        than ``meta["min_object_px"]`` (a small size among the painted objects, strokes included),
        so tiny organelles the model was taught are not erased as noise. Sizes set in
        ``min_size`` stay as they are.
        """
        floor, smallest = meta.get("object_floor_px") or {}, meta.get("min_object_px") or {}
        sizes = {name: min(self.default_min_size, int(px)) for name, px in smallest.items()}
        sizes.update({name: int(px) for name, px in floor.items()})
        return replace(self, min_size={**sizes, **self.min_size}) if sizes else self


def _ramp(n: int, overlap: int) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = min(overlap, n // 2)
        t = (np.arange(r, dtype=np.float32) + 0.5) / r
        ramp = 0.5 - 0.5 * np.cos(np.pi * t)
        w[:r] = ramp
        w[n - r :] = ramp[::-1]
    return np.maximum(w, 1e-3)


def _tiling(length: int, *, window: int, overlap: int, divisor: int) -> tuple[int, list[int]]:
    """Window size (multiple of ``divisor``; may exceed ``length``, which is then padded) and
    starts along one axis, the fewest windows of at most ``window`` that overlap >= ``overlap``."""
    up = lambda v: -(-v // divisor) * divisor  # noqa: E731
    if length <= window:
        return up(length), [0]
    n = -(-(length - overlap) // (window - overlap))
    size = min(window, up(-(-(length + (n - 1) * overlap) // n)))
    return size, np.linspace(0, length - size, n).round().astype(int).tolist()


def _blend(model: TrainedModel, data: np.ndarray, *, window: int, overlap: int, tta: bool, device: torch.device, batch: int) -> np.ndarray:
    """Blended probabilities (C, nz, H, W) of normalised ``data`` (nz + 2*halo, H, W)."""
    _, ly, lx = data.shape
    d = model.config.divisor
    wy, sy = _tiling(ly, window=window, overlap=overlap, divisor=d)
    wx, sx = _tiling(lx, window=window, overlap=overlap, divisor=d)
    pad_y, pad_x = max(0, wy - ly), max(0, wx - lx)
    if pad_y or pad_x:
        data = np.pad(data, ((0, 0), (0, pad_y), (0, pad_x)), mode="reflect" if pad_y < ly and pad_x < lx else "edge")
    nz = data.shape[0] - 2 * model.halo
    acc = np.zeros((model.config.out_channels, nz, ly, lx), np.float32)
    wsum = np.zeros((ly, lx), np.float32)
    weight = np.outer(_ramp(wy, overlap if len(sy) > 1 else 0), _ramp(wx, overlap if len(sx) > 1 else 0))
    stack = np.lib.stride_tricks.sliding_window_view(data, model.config.in_slices, axis=0)  # (nz, Y', X', k)
    for y0 in sy:
        for x0 in sx:
            win = np.array(np.moveaxis(stack[:, y0 : y0 + wy, x0 : x0 + wx, :], -1, 1), order="C")
            probs = _forward(model, win, device=device, tta=tta, batch=batch)  # (nz, C, wy, wx)
            hy, hx = min(wy, ly - y0), min(wx, lx - x0)  # the padded part of a window lies outside
            acc[:, :, y0 : y0 + hy, x0 : x0 + hx] += np.moveaxis(probs[:, :, :hy, :hx], 1, 0) * weight[:hy, :hx]
            wsum[y0 : y0 + hy, x0 : x0 + hx] += weight[:hy, :hx]
    acc /= wsum
    return acc


def downsample(data: np.ndarray, scale: int) -> np.ndarray:
    """Mean over ``scale x scale`` squares of the last two axes (edges padded by repetition)."""
    if scale == 1:
        return data
    *lead, h, w = data.shape
    ph, pw = -h % scale, -w % scale
    if ph or pw:
        data = np.pad(data, [(0, 0)] * len(lead) + [(0, ph), (0, pw)], mode="edge")
    h2, w2 = data.shape[-2] // scale, data.shape[-1] // scale
    return data.reshape(*lead, h2, scale, w2, scale).mean(axis=(-3, -1), dtype=np.float32)


def _upsample(probs: np.ndarray, scale: int) -> np.ndarray:
    c, nz, h, w = probs.shape
    t = torch.from_numpy(probs.reshape(c * nz, 1, h, w))
    return F.interpolate(t, scale_factor=scale, mode="bilinear", align_corners=False).numpy().reshape(c, nz, h * scale, w * scale)


def _mix_slices(probs: np.ndarray, weights: np.ndarray, *, below: bool, above: bool) -> np.ndarray:
    """Each slice of ``probs`` (C, nz, H, W) mixed with its neighbours, head by head:
    ``(1 - 2w) p[z] + w (p[z-1] + p[z+1])``.

    ``below`` / ``above``: the first / last slice is a neighbour read only for this (dropped
    from the result); otherwise it is the volume's edge and its missing neighbour is itself.
    """
    p = np.concatenate(([] if below else [probs[:, :1]]) + [probs] + ([] if above else [probs[:, -1:]]), axis=1)
    w = weights.astype(np.float32)[:, None, None, None]
    return (1 - 2 * w) * p[:, 1:-1] + w * (p[:, :-2] + p[:, 2:])


def block_regions(shape: tuple[int, ...], block: tuple[int, int, int]) -> list[Region]:
    """The grid of blocks (ZYX slices) covering a volume of ``shape``."""
    if len(block) != 3 or min(block) < 1:
        raise ValueError(f"block must be three positive sizes (Z, Y, X), got {block}")
    z, y, x = shape[-3:]
    return [
        (slice(z0, min(z0 + block[0], z)), slice(y0, min(y0 + block[1], y)), slice(x0, min(x0 + block[2], x)))
        for z0 in range(0, z, block[0])
        for y0 in range(0, y, block[1])
        for x0 in range(0, x, block[2])
    ]


def _read(image: Any, zs: slice, ys: slice, xs: slice, halo: int, z_total: int) -> np.ndarray:
    """Slices ``zs`` with ``halo`` neighbours each side (edge slices repeated)."""
    lo, hi = max(zs.start - halo, 0), min(zs.stop + halo, z_total)
    core = np.asarray(image[lo:hi, ys, xs])
    before = zs.start - halo - lo  # negative when padding needed
    after = hi - (zs.stop + halo)
    if before < 0 or after < 0:
        core = np.concatenate([core[:1]] * (-before) + [core] + [core[-1:]] * (-after), axis=0)
    return core


def _forward(
    model: TrainedModel, x: np.ndarray, *, device: torch.device, tta: bool, batch: int
) -> np.ndarray:
    """Sigmoid probabilities for a stack of windows ``x`` (N, in_slices, H, W) -> (N, C, H, W)."""
    flips: list[tuple[int, ...]] = [()] + ([(-1,), (-2,), (-2, -1)] if tta else [])
    out = np.empty((x.shape[0], model.config.out_channels, *x.shape[2:]), np.float32)
    amp = device.type == "cuda"
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch):
            t = torch.from_numpy(x[i : i + batch]).to(device, non_blocking=True)
            acc = None
            for dims in flips:
                ti = torch.flip(t, dims) if dims else t
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    p = torch.sigmoid(model.net(ti).float())
                p = torch.flip(p, dims) if dims else p
                acc = p if acc is None else acc + p
            assert acc is not None
            out[i : i + batch] = (acc / len(flips)).cpu().numpy()
    return out


def predict_block(
    model: TrainedModel,
    image: Any,
    region: Region,
    *,
    window: int = 512,
    overlap: int = 32,
    halo: int | None = None,
    tta: bool = False,
    device: str | torch.device = "cpu",
    batch: int | None = None,
    z_blend: Mapping[str, float] | None = None,
    stats: PredictStats | None = None,
) -> np.ndarray:
    """Blended probabilities of one block.

    Parameters
    ----------
    model : TrainedModel (see :func:`~segmentation.core.modelfile.load_model`)
    image : array-like, shape (Z, Y, X)
    region : tuple of three slices with steps of 1, the block.
    window, overlap : largest window side in pixels (multiple of ``2**(depth-1)``) and the
        least overlap between neighbouring windows (at most half the window).
    halo : context added around the block on each side in Y and X (default ``overlap``).
    z_blend : head -> weight w of each neighbouring slice (0 <= w <= 1/3): the probabilities of
        a slice become ``(1 - 2w) p[z] + w (p[z-1] + p[z+1])``, so an object seen on the slices
        around it is not lost on one; None: the weights training chose on held-out slices
        (``meta["z_blend"]``, absent: none). Costs the forward pass of one more slice each side.

    Returns
    -------
    ndarray, shape (n_heads, bz, by, bx), float32 in [0, 1]
    """
    dev = resolve_device(device)
    stats = stats if stats is not None else PredictStats()
    shape = tuple(int(s) for s in image.shape)
    d = model.config.divisor
    if window % d or window <= 0:
        raise ValueError(f"window {window} is not a positive multiple of {d} (2**(depth-1))")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    overlap = min(overlap, window // 2)
    scale = model.scale
    halo = (overlap if halo is None else halo) * scale
    zs, ys, xs = region
    blend = model.meta.get("z_blend") if z_blend is None else z_blend
    weights = np.array([float((blend or {}).get(name, 0.0)) for name in model.classes.heads])
    mix = bool(weights.any()) and shape[0] > 1
    z0, z1 = (max(zs.start - 1, 0), min(zs.stop + 1, shape[0])) if mix else (zs.start, zs.stop)
    t0 = time.perf_counter()
    # grow the block by the halo; with scale > 1 also to a multiple of the scale
    ey0, ey1 = max(ys.start - halo, 0), min(ys.stop + halo, shape[1])
    ex0, ex1 = max(xs.start - halo, 0), min(xs.stop + halo, shape[2])
    ey0, ex0 = ey0 - ey0 % scale, ex0 - ex0 % scale
    raw = _read(image, slice(z0, z1), slice(ey0, ey1), slice(ex0, ex1), model.halo, shape[0])
    data = downsample(model.normalization.apply(raw), scale)
    t1 = time.perf_counter()
    stats.load_s += t1 - t0
    acc = _blend(model, data, window=window, overlap=overlap, tta=tta, device=dev, batch=batch or (16 if dev.type == "cuda" else 4))
    if mix:
        acc = _mix_slices(acc, weights, below=z0 < zs.start, above=z1 > zs.stop)
    if scale > 1:
        acc = _upsample(acc, scale)
    acc = np.ascontiguousarray(acc[:, :, ys.start - ey0 : ys.stop - ey0, xs.start - ex0 : xs.stop - ex0])
    stats.forward_s += time.perf_counter() - t1
    stats.voxels += acc[0].size
    stats.blocks += 1
    return acc


def postprocess_masks(
    masks: np.ndarray,
    spec: ClassSpec,
    post: PostProcess,
    *,
    inner_edges: tuple[bool, bool, bool, bool] = (False, False, False, False),
) -> np.ndarray:
    """Fill holes, drop small 2D objects, then nest children in parents.

    masks : bool, shape (n_heads, Z, Y, X); returns a new array of the same shape.
    inner_edges : (top, bottom, left, right) block edges that border another block;
        objects touching those are never dropped.
    """
    out = np.array(masks, bool, copy=True)
    for j, name in enumerate(spec.heads):
        min_size = post.min_size.get(name, post.default_min_size)
        for z in range(out.shape[1]):
            m = out[j, z]
            if not m.any():
                continue
            if name in post.fill_holes:
                m = ndimage.binary_fill_holes(m)
            if min_size > 1:
                lab, n = ndimage.label(m)
                if n:
                    sizes = np.bincount(lab.ravel())
                    keep = sizes >= min_size
                    edge_ids = [lab[0], lab[-1], lab[:, 0], lab[:, -1]]
                    for is_inner, ids in zip(inner_edges, edge_ids):
                        if is_inner:
                            keep[np.unique(ids)] = True
                    keep[0] = False
                    m = keep[lab]
            out[j, z] = m
    return spec.nest(out)


def _loaded(model: TrainedModel | str | os.PathLike[str], device: str | torch.device) -> tuple[TrainedModel, torch.device]:
    dev = resolve_device(device)
    return load_model(model, device=dev), dev


def _as_volume(image: Any) -> tuple[Any, bool]:
    if len(image.shape) == 2:
        return np.asarray(image)[None], True
    if len(image.shape) != 3:
        raise ValueError(f"image must be ZYX (or YX), got shape {tuple(image.shape)}")
    return image, False


def _iter_blocks(
    image: Any, block: tuple[int, int, int], on_progress: Callable[[PredictProgress], None] | None, progress_bar: bool
) -> Iterator[tuple[int, Region]]:
    regions = block_regions(tuple(image.shape), block)
    start = time.perf_counter()
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(regions), desc="predict", unit="block", leave=False)
    for i, region in enumerate(regions):
        yield i, region
        if bar is not None:
            bar.update(1)
        if on_progress is not None:
            on_progress(PredictProgress(done=i + 1, total=len(regions), elapsed_s=time.perf_counter() - start))
    if bar is not None:
        bar.close()


def predict_probabilities(
    model: TrainedModel | str | os.PathLike[str],
    image: Any,
    *,
    out: Any = None,
    block: tuple[int, int, int] = (8, 1024, 1024),
    window: int = 512,
    overlap: int = 32,
    tta: bool = False,
    device: str | torch.device = "auto",
    on_progress: Callable[[PredictProgress], None] | None = None,
    progress_bar: bool = False,
    stats: PredictStats | None = None,
) -> Any:
    """Per-class probabilities of a volume, block by block.

    Parameters
    ----------
    model : TrainedModel or path of a model file
    image : array-like, shape (Z, Y, X) or (Y, X), any numeric dtype (numpy, zarr, ...)
    out : array-like, shape (n_heads, Z, Y, X), optional
        Written block by block (e.g. a float16/float32 zarr array); a new float32 numpy
        array when None.
    block : (bz, by, bx) block size; memory is bounded by it, not by the volume.
    tta : average over the four flips in YX (4x slower).

    Returns
    -------
    array-like, shape (n_heads, Z, Y, X) (or (n_heads, Y, X) for a 2D image), float in [0, 1]
    """
    trained, dev = _loaded(model, device)
    vol, flat = _as_volume(image)
    shape = (trained.config.out_channels, *tuple(vol.shape))
    target = np.zeros(shape, np.float32) if out is None else out
    if tuple(target.shape) != shape and not (flat and tuple(target.shape) == (shape[0], *shape[2:])):
        raise ValueError(f"out has shape {tuple(target.shape)}, expected {shape}")
    stats = stats if stats is not None else PredictStats()
    for _, region in _iter_blocks(vol, block, on_progress, progress_bar):
        probs = predict_block(trained, vol, region, window=window, overlap=overlap, tta=tta, device=dev, stats=stats)
        t = time.perf_counter()
        if flat and out is not None:
            target[(slice(None), *region[1:])] = probs[:, 0]
        else:
            target[(slice(None), *region)] = probs
        stats.write_s += time.perf_counter() - t
    if flat and out is None:
        return target[:, 0]
    return target


def predict_volume(
    model: TrainedModel | str | os.PathLike[str],
    image: Any,
    *,
    out: Any = None,
    block: tuple[int, int, int] = (8, 1024, 1024),
    window: int = 512,
    overlap: int = 32,
    tta: bool = False,
    device: str | torch.device = "auto",
    postprocess: PostProcess | None = PostProcess(),
    thresholds: Mapping[str, float] | None = None,
    z_blend: Mapping[str, float] | None = None,
    on_progress: Callable[[PredictProgress], None] | None = None,
    progress_bar: bool = False,
    stats: PredictStats | None = None,
) -> Any:
    """Label volume predicted block by block, with class values as in training.

    Parameters
    ----------
    model : TrainedModel or path of a model file
    image : array-like, shape (Z, Y, X) or (Y, X)
    out : array-like of the image's shape and an integer dtype, optional (e.g. zarr),
        written block by block; a new numpy array (uint8, or uint16 for values > 255)
        when None.
    block, window, overlap, tta, device : see :func:`predict_probabilities`.
    postprocess : PostProcess or None
        Per-class clean-up (None: plain thresholding with nesting).
    thresholds : head -> threshold (0.5 for heads not named); None: the ones training
        calibrated on held-out slices (``meta["thresholds"]``).
    z_blend : see :func:`predict_block` (None: the model's own, ``{}``: none).

    Returns
    -------
    array-like, image shape: the deepest class predicted at each voxel (hierarchy kept),
    the background value where no class is predicted (0 if there is no background class).

    Examples
    --------
    >>> labels = predict_volume("model.pt", zarr.open_array("vol.zarr"))  # doctest: +SKIP
    """
    trained, dev = _loaded(model, device)
    vol, flat = _as_volume(image)
    spec = trained.classes
    dtype = np.uint8 if max(spec.values.values()) < 256 else np.uint16
    target = np.zeros(tuple(vol.shape), dtype) if out is None else out
    if out is not None and tuple(out.shape) not in (tuple(vol.shape), tuple(vol.shape[1:]) if flat else ()):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(image.shape)}")
    stats = stats if stats is not None else PredictStats()
    full = tuple(vol.shape)
    if postprocess is not None:
        postprocess = postprocess.taught(trained.meta)
    if thresholds is None:
        thresholds = trained.meta.get("thresholds") or {}
    for _, region in _iter_blocks(vol, block, on_progress, progress_bar):
        probs = predict_block(trained, vol, region, window=window, overlap=overlap, tta=tta, device=dev, z_blend=z_blend, stats=stats)
        t = time.perf_counter()
        masks = spec.head_masks(probs, threshold=thresholds)
        if postprocess is not None:
            ys, xs = region[1], region[2]
            inner = (ys.start > 0, ys.stop < full[1], xs.start > 0, xs.stop < full[2])
            masks = postprocess_masks(masks, spec, postprocess, inner_edges=inner)
        labels = spec.compose(probs, masks, dtype=dtype)
        t2 = time.perf_counter()
        stats.postprocess_s += t2 - t
        if flat and out is not None:
            target[region[1:]] = labels[0]
        else:
            target[region] = labels
        stats.write_s += time.perf_counter() - t2
    if flat and out is None:
        return target[0]
    return target
