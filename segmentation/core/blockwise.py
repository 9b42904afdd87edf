"""One block of a distributed segment: prediction on a fixed lattice, clean-up, tile scores.

The result of a block must not depend on how the volume was cut into blocks, nor on the
order they run in, so that any number of workers produce the bytes one process would.
:mod:`segmentation.core.inference` blends overlapping windows whose placement adapts to the
block; here instead every voxel is predicted by exactly one window, fixed by the volume:

* **Lattice.** The YX plane is tiled by ``cell x cell`` squares from the origin. Each cell is
  predicted by one window, the cell grown by ``context`` pixels on every side (mirrored
  beyond the volume's edge, padded on the far side up to a size the network takes), and the
  context is cropped away (torch-em's ``predict_with_halo``: no blending, so no seam depends
  on the block). A block is a whole number of cells, so it reads its core plus ``context``.
* **Z.** 2.5D models read ``in_slices // 2`` slices each side (the volume's first and last
  slice repeated beyond its ends), and a slice blend (``z_blend``) one more slice each side.
* **Clean-up** (:func:`~segmentation.core.inference.postprocess_masks`) runs per slice and
  per lattice cell, objects touching an inner cell edge kept, so it is block-independent too.
* **Scores** of the regions to label next come from the same probabilities
  (:func:`segmentation.core.active.block_tile_sums`): no second pass over the volume.

Bit-for-bit equality holds for one device kind, one torch thread count and one batch size:
on CPU the network's output for a window changes in the last bit of a float32 with the
number of threads and with the number of windows in the call (the kernels differ), not with
the other windows in it. So every forward call holds exactly ``batch`` windows (the last
padded with copies), and workers that must agree set the same thread count.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from segmentation.core.active import TileSums, binary_entropy, block_tile_sums
from segmentation.core.blocks import Region
from segmentation.core.inference import (
    PostProcess,
    PredictStats,
    _mix_slices,
    _read,
    _upsample,
    downsample,
    postprocess_masks,
)
from segmentation.core.modelfile import TrainedModel, resolve_device

__all__ = ["BlockOutput", "Lattice", "block_probabilities", "segment_block"]

# PostProcess is frozen, so one instance shared by every call is a safe default.
_DEFAULT_POSTPROCESS = PostProcess()


@dataclass(frozen=True)
class Lattice:
    """Where the windows of a block-independent prediction lie.

    cell : YX side, in level-0 pixels, of the square each window predicts; block sizes in Y
        and X are multiples of it. context : pixels read around a cell and cropped after the
        forward pass (the network zero-pads at window borders; 32 px of context keep that
        out of the kept part for the default depth of 4).
    """

    cell: int = 512
    context: int = 32

    def check(self, model: TrainedModel) -> None:
        """Refuse a lattice the model cannot run on (cell and context in whole downsampled pixels)."""
        scale = int(model.scale)
        if self.cell < 1 or self.context < 0:
            raise ValueError(f"lattice cell {self.cell} must be positive and context {self.context} non-negative")
        if self.cell % scale or self.context % scale:
            raise ValueError(f"lattice cell {self.cell} and context {self.context} are not multiples of the "
                             f"model's scale {scale}")


@dataclass
class BlockOutput:
    """What one block produced: ``labels`` (bz, by, bx) for its core, the voxel count per
    label value, and its tiles' uncertainty sums (None when no tile size was asked)."""

    labels: np.ndarray
    class_voxels: dict[int, int]
    tiles: TileSums | None


def _forward_flips(model: TrainedModel, x: np.ndarray, *, device: torch.device, tta: bool, batch: int,
                   disagreement: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean sigmoid probabilities over the flips (N, C, H, W) of windows ``x`` (N, k, H, W), and the
    flips' mean absolute disagreement with that mean (None unless asked and ``tta``)."""
    flips: list[tuple[int, ...]] = [()] + ([(-1,), (-2,), (-2, -1)] if tta else [])
    shape = (x.shape[0], model.config.out_channels, *x.shape[2:])
    mean = np.empty(shape, np.float32)
    spread = np.empty(shape, np.float32) if disagreement and tta else None
    amp = device.type == "cuda"
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch):
            part = x[i : i + batch]
            n = part.shape[0]
            if n < batch:  # every forward call holds `batch` windows: the kernels, and so the bits, stay the same
                part = np.concatenate([part, np.repeat(part[-1:], batch - n, axis=0)])
            t = torch.from_numpy(part).to(device, non_blocking=True)
            each = []
            for dims in flips:
                ti = torch.flip(t, dims) if dims else t
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    p = torch.sigmoid(model.net(ti).float())
                each.append(torch.flip(p, dims) if dims else p)
            acc = each[0]
            for p in each[1:]:
                acc = acc + p
            m = acc / len(flips)
            mean[i : i + n] = m[:n].cpu().numpy()
            if spread is not None:
                dev = torch.abs(each[0] - m)
                for p in each[1:]:
                    dev = dev + torch.abs(p - m)
                spread[i : i + n] = (dev / len(flips))[:n].cpu().numpy()
    return mean, spread


def _cell_window(model: TrainedModel, image: Any, zs: slice, ys: slice, xs: slice, context: int) -> np.ndarray:
    """The normalised window of one lattice cell: slices ``zs`` with the model's Z context, the
    cell grown by ``context`` (mirrored beyond the volume), padded to a size the network takes."""
    Z, Y, X = (int(s) for s in image.shape)
    step = int(model.scale) * model.config.divisor
    ry0, ry1 = max(ys.start - context, 0), min(ys.stop + context, Y)
    rx0, rx1 = max(xs.start - context, 0), min(xs.stop + context, X)
    raw = _read(image, zs, slice(ry0, ry1), slice(rx0, rx1), model.halo, Z)
    data = model.normalization.apply(raw)
    pads = []
    for lo, hi, r0, r1 in ((ys.start, ys.stop, ry0, ry1), (xs.start, xs.stop, rx0, rx1)):
        want = (hi - lo) + 2 * context
        total = -(-want // step) * step
        pads.append((context - (lo - r0), context - (r1 - hi) + total - want))
    if any(p for pair in pads for p in pair):
        mode: Literal["reflect", "edge"] = "reflect" if min(data.shape[1:]) > 1 else "edge"
        data = np.pad(data, ((0, 0), *pads), mode=mode)
    return data


def block_probabilities(
    model: TrainedModel,
    image: Any,
    core: Region,
    *,
    lattice: Lattice = Lattice(),
    tta: bool = False,
    device: str | torch.device = "cpu",
    batch: int | None = None,
    z_blend: Mapping[str, float] | None = None,
    uncertainty: bool = False,
    stats: PredictStats | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities of one block core, the same whatever block the core belongs to.

    Parameters
    ----------
    model : TrainedModel, in eval mode on ``device``.
    image : array-like, shape (Z, Y, X) (numpy, zarr).
    core : three slices; Y and X start on the lattice and end on it or at the volume's edge.
    lattice : the window lattice (module docstring).
    tta : average over the four flips in YX.
    z_blend : head -> neighbour-slice weight (see :func:`~segmentation.core.inference.predict_block`);
        None: the model's own.
    uncertainty : also return per-voxel uncertainty in [0, 1] (the binary entropy of the
        probabilities plus, with ``tta``, the flips' mean absolute disagreement, blended across
        slices like the probabilities; capped at 1), as :func:`~segmentation.core.active.flip_uncertainty`.

    Returns
    -------
    probs : float32, shape (n_heads, bz, by, bx), in [0, 1].
    uncertainty : float32 of the same shape, or None.
    """
    lattice.check(model)
    dev = resolve_device(device)
    stats = stats if stats is not None else PredictStats()
    Z, Y, X = (int(s) for s in image.shape)
    zs, ys, xs = core
    cell, context = lattice.cell, lattice.context
    for name, s, n in (("Y", ys, Y), ("X", xs, X)):
        if s.start % cell or (s.stop % cell and s.stop != n) or not 0 <= s.start < s.stop <= n:
            raise ValueError(f"block {name} range {s.start}:{s.stop} is not on the lattice of {cell} px "
                             f"inside 0:{n}")
    if not 0 <= zs.start < zs.stop <= Z:
        raise ValueError(f"block Z range {zs.start}:{zs.stop} is not inside 0:{Z}")
    blend = model.meta.get("z_blend") if z_blend is None else z_blend
    weights = np.array([float((blend or {}).get(name, 0.0)) for name in model.classes.heads])
    mix = bool(weights.any()) and Z > 1
    z0, z1 = (max(zs.start - 1, 0), min(zs.stop + 1, Z)) if mix else (zs.start, zs.stop)
    batch = batch or (16 if dev.type == "cuda" else 4)
    C, nz = model.config.out_channels, zs.stop - zs.start
    probs = np.empty((C, nz, ys.stop - ys.start, xs.stop - xs.start), np.float32)
    unc = np.empty_like(probs) if uncertainty else None
    scale = int(model.scale)
    for cy in range(ys.start, ys.stop, cell):
        for cx in range(xs.start, xs.stop, cell):
            t0 = time.perf_counter()
            cys, cxs = slice(cy, min(cy + cell, Y)), slice(cx, min(cx + cell, X))
            data = downsample(_cell_window(model, image, slice(z0, z1), cys, cxs, context), scale)
            t1 = time.perf_counter()
            stats.load_s += t1 - t0
            stack = np.lib.stride_tricks.sliding_window_view(data, model.config.in_slices, axis=0)
            windows = np.array(np.moveaxis(stack, -1, 1), order="C")  # (z1 - z0, k, H, W)
            mean, spread = _forward_flips(model, windows, device=dev, tta=tta, batch=batch, disagreement=uncertainty)
            parts = [np.moveaxis(mean, 1, 0)] + ([np.moveaxis(spread, 1, 0)] if spread is not None else [])
            out = []
            for p in parts:
                if mix:
                    p = _mix_slices(p, weights, below=z0 < zs.start, above=z1 > zs.stop)
                if scale > 1:
                    p = _upsample(np.ascontiguousarray(p), scale)
                c0 = context
                out.append(p[:, :, c0 : c0 + cys.stop - cys.start, c0 : c0 + cxs.stop - cxs.start])
            dst = (slice(None), slice(None), slice(cy - ys.start, cys.stop - ys.start),
                   slice(cx - xs.start, cxs.stop - xs.start))
            probs[dst] = out[0]
            if unc is not None:
                u = binary_entropy(out[0])
                if len(out) > 1:
                    u = np.minimum(u + out[1], 1.0)
                unc[dst] = u
            stats.forward_s += time.perf_counter() - t1
    stats.voxels += nz * (ys.stop - ys.start) * (xs.stop - xs.start)
    stats.blocks += 1
    return probs, unc


def segment_block(
    model: TrainedModel,
    image: Any,
    core: Region,
    *,
    lattice: Lattice = Lattice(),
    tta: bool = False,
    device: str | torch.device = "cpu",
    postprocess: PostProcess | None = _DEFAULT_POSTPROCESS,
    thresholds: Mapping[str, float] | None = None,
    z_blend: Mapping[str, float] | None = None,
    labels: Any = None,
    tile: int | None = None,
    dtype: Any = None,
    stats: PredictStats | None = None,
) -> BlockOutput:
    """Label values of one block core and, with ``tile``, its tiles' uncertainty sums.

    Parameters
    ----------
    model, image, core, lattice, tta, device, z_blend : see :func:`block_probabilities`.
    postprocess : per-class clean-up, per slice and lattice cell (None: thresholds only);
        with the object sizes the model was taught, as in
        :func:`~segmentation.core.inference.predict_volume`.
    thresholds : head -> threshold; None: the model's calibrated ones.
    labels : array-like of the image's shape, 0 = unlabeled (painted voxels do not count in
        the tile scores); None: every voxel counts.
    tile : side of the suggestion tiles (a fixed grid from the origin), or None for no scores.
    dtype : of the label values; uint8, or uint16 where a class value exceeds 255, by default.

    Returns
    -------
    BlockOutput
    """
    stats = stats if stats is not None else PredictStats()
    spec = model.classes
    Z, Y, X = (int(s) for s in image.shape)
    probs, unc = block_probabilities(model, image, core, lattice=lattice, tta=tta, device=device,
                                     z_blend=z_blend, uncertainty=tile is not None, stats=stats)
    t = time.perf_counter()
    if thresholds is None:
        thresholds = model.meta.get("thresholds") or {}
    masks = spec.head_masks(probs, threshold=thresholds)
    zs, ys, xs = core
    if postprocess is not None:
        post = postprocess.taught(model.meta)
        for cy in range(ys.start, ys.stop, lattice.cell):
            for cx in range(xs.start, xs.stop, lattice.cell):
                cy1, cx1 = min(cy + lattice.cell, Y), min(cx + lattice.cell, X)
                box = (slice(None), slice(None), slice(cy - ys.start, cy1 - ys.start),
                       slice(cx - xs.start, cx1 - xs.start))
                inner = (cy > 0, cy1 < Y, cx > 0, cx1 < X)
                masks[box] = postprocess_masks(masks[box], spec, post, inner_edges=inner)
    if dtype is None:
        dtype = np.uint8 if max(spec.values.values()) < 256 else np.uint16
    values = spec.compose(probs, masks, dtype=dtype)
    tiles = None
    if tile is not None:
        assert unc is not None
        free = None if labels is None else np.asarray(labels[zs, ys, xs]) == 0
        tiles = block_tile_sums(unc, core, tile=tile, free=free)
    found, counts = np.unique(values, return_counts=True)
    stats.postprocess_s += time.perf_counter() - t
    return BlockOutput(labels=values, class_voxels={int(v): int(n) for v, n in zip(found, counts)}, tiles=tiles)
