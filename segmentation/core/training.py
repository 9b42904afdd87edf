"""Training a ResUNet on sparse labels, within a time budget.

Labels use 0 for unlabeled voxels; every other value names a class (see
:mod:`segmentation.core.classes` for what a painted value means for each head). The loss
is masked binary cross-entropy plus soft Dice, both computed on labeled voxels only, so
unlabeled voxels give no loss and no gradient. Labeled slices are split: when there are
at least two, about one in five (at least one) is held out for validation, which picks
the best weights and stops training early when it no longer improves.

The function API takes injected callbacks so a Celery task can report progress and
cancel: ``on_progress(TrainProgress)`` after each validation, ``should_stop() -> bool``
polled every step.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from segmentation.core.classes import ClassSpec
from segmentation.core.encoder import PretrainedEncoder, encoder_mismatch, load_encoder
from segmentation.core.inference import _read, downsample, predict_block
from segmentation.core.modelfile import Normalization, TrainedModel, load_model, resolve_device
from segmentation.core.resunet import ResUNet, ResUNetConfig
from segmentation.core.sampling import LabeledSlices, PatchSampler

__all__ = ["TrainConfig", "TrainProgress", "TrainResult", "train", "masked_loss", "hard_example_weight", "labeled_slices", "lr_factor", "optimizer_step",
           "smallest_objects", "context_slices", "calibrate", "THRESHOLDS", "Z_BLENDS"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; ``None`` sizes pick CPU or CUDA defaults.

    patch, batch : patch side (pixels) and patches per step; CPU 160 / 4, CUDA 256 / 16.
    in_slices, base_width, depth : network (ignored when fine-tuning: taken from ``init``).
    lr : AdamW learning rate. label_bias, slice_balance : see :class:`~segmentation.core.sampling.PatchSampler`
        (``balance``); 0.5 lets a few painted tiles be seen about as often as a fully painted slice.
    val_fraction : share of labeled slices held out (when >= 2 labeled slices), or of the columns
        of every labeled slice with ``val_split="columns"``.
    val_split : "slices" holds whole labeled slices out; "columns" holds out the last
        ``val_fraction`` of the columns of every labeled slice, so that with two painted slices
        both train (the image of the held-out part is seen, never its labels). Explicit
        ``val_slices`` always split by slices.
    patience : validations without improvement before stopping early.
    max_steps : optional cap on steps besides the time budget.
    scale : train (and later predict) on the image downsampled by this factor in Y and X;
        2 gives four times the steps in a CPU budget and suits organelles tens of pixels wide.
        Ignored when fine-tuning (taken from ``init``).
    finetune_lr_factor : the learning rate is multiplied by this when starting from ``init``,
        so the first steps on new labels do not undo what the earlier model learned. With the
        app's 5-minute fine-tune, 1.0 was within the spread between seeds of 0.25 on an unseen
        SBEM block (docs/ACCURACY.md, "Fine-tune length and rate").
    lr_floor : below 1, the learning rate falls from ``lr`` to ``lr * lr_floor`` along a cosine
        over the budget (time, or ``max_steps`` when that ends sooner), after a warm-up over its
        first 2 %, so the last steps settle instead of carrying the noise of batches of four.
        1.0 (the default) keeps the rate constant: on the phantom with 400 CPU steps the decay
        (floor 0.05) lost the rare classes still being learned late (lysosome Dice 0.55 -> 0),
        see docs/notes/accuracy-2026-11-26.md.
    finetune_freeze_norm : when starting from ``init``, keep the batch-norm running
        statistics of ``init`` (the layers' scale and shift still learn). Batches of four
        CPU patches, half of them from a few new tiles, otherwise drag the statistics
        around so much that validation Dice swung between 0.29 and 0.65 within 40 steps
        on the SBEM crop.
    elastic : share of the augmented patches also deformed elastically
        (:func:`~segmentation.core.sampling.elastic`); 0 turns it off.
    intensity : strength of the intensity augmentation (with ``augment``): ``"basic"`` (mild
        contrast, brightness and noise jitter) or ``"em"`` (also gamma, blur, stronger noise and
        smooth brightness ramps: :func:`~segmentation.core.sampling.em_intensity`), for regions
        and volumes imaged unlike the labeled slices.
    calibrate : after training, pick each head's threshold and neighbour-slice weight on the
        held-out voxels (:func:`calibrate`, kept in ``meta["thresholds"]`` and ``meta["z_blend"]``
        and used by prediction); without held-out slices a fine-tuned model keeps those of ``init``.
    ema : when above 0, validate and return an exponential moving average of the weights
        (and batch-norm statistics) with this decay, warmed up as ``min(ema, (1+n)/(10+n))`` at
        step n, instead of the raw weights: batches of four patches make each step's weights noisy.
        On by default (0.99): the headline accuracy figures use it, and its validation Dice
        climbs steadily where the raw weights' jumps around (docs/ACCURACY.md).
        0 turns it off.
    select_best : keep the weights with the best validation Dice and stop early when it stalls.
        False trains the whole budget and keeps the last weights, validating only to report
        and calibrate: one held-out slice is a noisy judge of a few newly painted tiles, and in
        the correction loop its gate kept rounds from learning them (docs/notes/accuracy-2026-11-26.md).
    hard_weight : when fine-tuning from ``init``, the loss weight of labeled voxels that ``init``
        gets wrong (background it calls foreground at p > 0.5, foreground it misses), per head,
        so a correction round removes the confident errors that were painted over
        (:func:`hard_example_weight`); 1 weighs every labeled voxel alike. Only where ``init``
        has the same heads; costs one more forward pass a step. Off by default: at 4, a round on
        the unseen SBEM block fixed more of the painted error but made as many new errors, and
        Dice on the rest fell by about 0.008 (docs/ACCURACY.md).
    gap_weight : extra loss weight on painted background between two nearly touching objects,
        so masks stop bridging the gap between neighbouring mitochondria
        (:func:`~segmentation.core.border_weights.gap_weights`); 0 adds none. Off by default: at 5,
        Dice on HeLa's unseen pages fell 0.746 -> 0.736 at equal steps (docs/ACCURACY.md).
    """

    patch: int | None = None
    batch: int | None = None
    in_slices: int = 1
    base_width: int = 16
    depth: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_bias: float = 0.9
    slice_balance: float = 0.5
    val_fraction: float = 0.2
    val_split: str = "slices"
    patience: int = 6
    max_steps: int | None = None
    augment: bool = True
    elastic: float = 0.0
    intensity: str = "basic"
    scale: int = 1
    finetune_lr_factor: float = 0.25
    finetune_freeze_norm: bool = True
    lr_floor: float = 1.0
    calibrate: bool = True
    select_best: bool = True
    ema: float = 0.99
    hard_weight: float = 1.0
    gap_weight: float = 0.0


@dataclass(frozen=True)
class TrainProgress:
    """Progress report: step, seconds elapsed and left, mean training loss since the last
    report, validation Dice (mean over classes; None without validation) and the best so far."""

    step: int
    elapsed_s: float
    eta_s: float
    loss: float | None
    val_dice: float | None
    best_val_dice: float | None


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    model : the trained model (best validation weights when validated).
    curve : (step, mean loss, validation Dice or None) at each report.
    val_dice : per-class Dice on held-out slices of the returned weights (empty without validation).
    train_slices, val_slices : Z indices used for each.
    stopped : "budget", "early_stop", "max_steps" or "cancelled".
    """

    model: TrainedModel
    curve: list[tuple[int, float | None, float | None]]
    val_dice: dict[str, float]
    train_slices: list[int]
    val_slices: list[int]
    steps: int
    stopped: str
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.net.state_dict()


def masked_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """BCE + soft Dice over voxels with nonzero weight.

    logits, target, weight : (N, C, H, W). Returns a scalar; exactly 0 (with zero
    gradients) when no voxel has weight.
    """
    logits = logits.float()
    wsum = weight.sum()
    if wsum <= 0:
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum") / wsum
    p = torch.sigmoid(logits) * weight
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    denom = p.sum(dims) + (target * weight).sum(dims)
    present = weight.sum(dims) > 0
    dice = 1.0 - (2.0 * inter + smooth) / (denom + smooth)
    return bce + dice[present].mean()


def hard_example_weight(weight: torch.Tensor, target: torch.Tensor, reference_logits: torch.Tensor,
                        factor: float) -> torch.Tensor:
    """``weight`` times ``factor`` where a reference model's prediction (logit > 0, i.e. p > 0.5)
    disagrees with ``target``; unlabeled voxels (weight 0) stay 0. All (N, C, H, W)."""
    wrong = (reference_logits.float() > 0) != (target > 0.5)
    return weight * torch.where(wrong, torch.full_like(weight, factor), torch.ones_like(weight))


def context_slices(voxel_size_nm: Sequence[float], *, max_ratio: float = 2.0) -> int:
    """Input slices for a volume of ZYX ``voxel_size_nm``: 5 (2.5D, two slices each side) when the
    Z spacing is within ``max_ratio`` of the finer XY spacing, 1 (2D) when sections are much
    thicker than pixels.

    Measured (docs/ACCURACY.md): on the isotropic phantom three slices raised endosome and
    lysosome Dice by about 0.1 over one, and five raised lysosomes by another 0.016 in both
    seeds (a mitochondrion's end, cut across, looks like a lysosome until the slices beyond
    show it goes on); on 40-50 nm serial sections of 5-6 nm pixels the neighbours look too
    different to help (SBEM -0.004, ssTEM -0.04).
    """
    z, y, x = (float(v) for v in voxel_size_nm)
    if min(z, y, x) <= 0:
        raise ValueError(f"voxel_size_nm {tuple(voxel_size_nm)} must be positive")
    return 5 if z <= max_ratio * min(y, x) else 1


def lr_factor(progress: float, floor: float, *, warmup: float = 0.02) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of training: linear warm-up over
    ``warmup``, then a cosine from 1 down to ``floor``."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return floor + (1.0 - floor) * progress / warmup
    t = (progress - warmup) / (1.0 - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def _progress(step: int, elapsed: float, budget: float, max_steps: int | None) -> float:
    """How far training is, by time or by steps, whichever ends it sooner."""
    done = elapsed / budget
    return max(done, step / max_steps) if max_steps else done


def optimizer_step(opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss`` through the AMP scaler (a pass-through off CUDA); returns the loss."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return float(loss.detach())


def smallest_objects(data: LabeledSlices, spec: ClassSpec, scale: int, *, percentile: float = 5.0,
                     whole: bool = False) -> dict[str, int]:
    """Per head, a small 2D object size (pixels of the full-resolution image) painted in ``data``.

    The ``percentile`` of the sizes of the 4-connected painted objects of each head; with
    ``whole``, only of the objects painted whole: more than one pixel of ``data`` (the network's
    grid), surrounded by painted voxels, touching neither an unlabeled voxel nor the slice's edge
    (not a stroke inside an object, not an object cut by the edge of a painted tile).
    Post-processing (:meth:`~segmentation.core.inference.PostProcess.taught`) keeps objects as
    small as the first (``meta["min_object_px"]``), so a model is never cleaned of objects the
    size of those it was taught (lysosomes a few pixels across), and drops those smaller than the
    second (``meta["object_floor_px"]``).
    """
    sizes: dict[str, list[int]] = {name: [] for name in spec.heads}
    for i in range(len(data.z)):
        target, weight = spec.targets(data.labels[i], complete=data.complete[i])
        for j, name in enumerate(spec.heads):
            lab, n = ndimage.label((target[j] > 0.5) & (weight[j] > 0))
            if not n:
                continue
            counts = np.bincount(lab.ravel())
            kept = counts > (1 if whole else 0)  # whole: a lone network pixel is a slip, not an object
            kept[0] = False
            if whole:
                kept[lab[ndimage.binary_dilation(weight[j] == 0)]] = False
                kept[np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = False
            sizes[name] += counts[kept].tolist()
    return {name: max(1, int(np.percentile(v, percentile, method="lower")) * scale * scale) for name, v in sizes.items() if v}


def _candidate_slices(labels: Any, complete: set[int]) -> list[int]:
    """The slices that may hold a label: those ``labels.candidate_slices()`` names when it has
    that method (a volume's label layers know which chunks were ever written), else every
    slice; complete slices always."""
    depth = int(labels.shape[0])
    finder = getattr(labels, "candidate_slices", None)
    candidates = finder() if callable(finder) else None
    found = range(depth) if candidates is None else candidates
    return sorted({z for z in found if 0 <= z < depth} | {z for z in complete if 0 <= z < depth})


def labeled_slices(labels: Any, *, complete_slices: Iterable[int] = ()) -> list[int]:
    """Z indices of slices holding any nonzero label, or marked complete; only the candidate
    slices are read (see :func:`_candidate_slices`), so the empty slices of a whole biopsy cost
    nothing."""
    complete = {int(z) for z in complete_slices}
    return [z for z in _candidate_slices(labels, complete) if z in complete or np.any(np.asarray(labels[z]))]


Box = tuple[int, int, int, int]
#: Side of the grid cells in which labels are grouped into regions (see :func:`_label_regions`).
REGION_CELL = 256


def _label_regions(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, margin: int, scale: int
                   ) -> list[tuple[Box, np.ndarray | None]]:
    """The parts of a plane of ``shape`` with labels at ``(ys, xs)`` to train on: each group of
    labels (labels closer than about two margins, on a grid of :data:`REGION_CELL` cells) as
    ``(box, keep)`` where ``box`` is ``(y0, y1, x0, x1)`` around the group, ``margin`` wider each
    side (clipped; ``y0``/``x0`` on multiples of ``scale``) and ``keep`` marks the group's voxels
    in the box (None: all of them), so labels of a neighbouring group inside a box are not
    counted twice."""
    from scipy import ndimage

    h, w = shape
    if ys.size == 0:
        return [((0, h, 0, w), None)]
    cell = REGION_CELL
    occupied = np.zeros((-(-h // cell), -(-w // cell)), bool)
    occupied[ys // cell, xs // cell] = True
    reach = max(1, -(-margin // cell))
    groups, n = ndimage.label(ndimage.binary_dilation(occupied, iterations=reach), structure=np.ones((3, 3)))
    of_voxel = groups[ys // cell, xs // cell]
    out: list[tuple[Box, np.ndarray | None]] = []
    for g in range(1, n + 1):
        gy, gx = ys[of_voxel == g], xs[of_voxel == g]
        y0, x0 = (max(0, int(v.min()) - margin) // scale * scale for v in (gy, gx))
        box = (y0, min(h, int(gy.max()) + 1 + margin), x0, min(w, int(gx.max()) + 1 + margin))
        keep = None
        if n > 1:
            keep = groups[np.arange(box[0], box[1])[:, None] // cell, np.arange(box[2], box[3])[None, :] // cell] == g
        out.append((box, keep))
    return out


def _stack(image: Any, z: int, box: Box, halo: int, norm: Normalization, scale: int) -> np.ndarray:
    """The ``box`` of slice ``z`` with ``halo`` neighbours each side (edges repeated, as
    prediction reads them), normalised and downsampled."""
    y0, y1, x0, x1 = box
    block = _read(image, slice(z, z + 1), slice(y0, y1), slice(x0, x1), halo, int(image.shape[0]))
    return downsample(norm.apply(block), scale)


def _gather(image: Any, labels: Any, zs: list[int], halo: int, norm: Normalization, complete: set[int], scale: int,
            margin: int, check: Callable[[np.ndarray], None] | None = None) -> LabeledSlices:
    """The labeled ones of slices ``zs`` as regions around their groups of labels, ``margin``
    pixels wider (complete slices whole), so memory follows what was painted, not the slice
    size; slices without a label and not complete give nothing. ``check`` sees the labeled
    values of each plane as it is read (each plane is read and scanned once)."""
    imgs, labs, boxes, zz = [], [], [], []
    c = scale // 2  # label of the centre voxel of each scale x scale square
    for z in zs:
        plane = np.asarray(labels[z])
        ys, xs = np.nonzero(plane)
        if z not in complete and ys.size == 0:
            continue
        if check is not None:
            check(plane[ys, xs])
        whole = ((0, plane.shape[0], 0, plane.shape[1]), None)
        for box, keep in [whole] if z in complete else _label_regions(plane.shape, ys, xs, margin, scale):
            lab = plane[box[0] : box[1], box[2] : box[3]]
            lab = np.where(keep, lab, 0) if keep is not None else lab.copy()  # a view would keep the plane
            if scale > 1:
                lab = np.pad(lab, ((0, -lab.shape[0] % scale), (0, -lab.shape[1] % scale)))[c::scale, c::scale]
            imgs.append(_stack(image, z, box, halo, norm, scale))
            labs.append(lab)
            boxes.append(box)
            zz.append(z)
    return LabeledSlices(imgs, labs, np.array([z in complete for z in zz], bool), zz, boxes)


def _around(image: Any, data: LabeledSlices, halo: int, norm: Normalization, scale: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The stacks (as in :func:`_gather`, the same regions) of the slice below and above each
    of ``data``'s regions (edges repeated)."""
    depth = int(image.shape[0])
    boxes = data.boxes or [(0, int(image.shape[1]), 0, int(image.shape[2]))] * len(data.z)

    def side(step: int) -> list[np.ndarray]:
        return [_stack(image, min(max(z + step, 0), depth - 1), box, halo, norm, scale) for z, box in zip(data.z, boxes)]

    return side(-1), side(+1)


def _split(zs: list[int], fraction: float) -> tuple[list[int], list[int]]:
    if len(zs) < 2 or fraction <= 0:
        return zs, []
    n_val = max(1, int(round(fraction * len(zs))))
    picks = sorted(set(np.linspace(0, len(zs) - 1, n_val + 2)[1:-1].round().astype(int).tolist()))
    val = [zs[i] for i in picks]
    return [z for z in zs if z not in val], val


def _split_columns(data: LabeledSlices, spec: ClassSpec, fraction: float) -> tuple[LabeledSlices, LabeledSlices]:
    """Training and validation parts of every labeled slice: the last ``fraction`` of its columns
    validates, the rest trains (complete slices get their background painted first, so the
    unpainted voxels of one part never count for the other)."""
    if spec.background is None and data.complete.any():
        raise ValueError("val_split 'columns' with slices marked complete needs a background class")
    train_labels, val_labels = [], []
    for lab, complete in zip(data.labels, data.complete):
        if complete:
            assert spec.background is not None  # checked above: complete slices come with a background class
            lab = np.where(lab == 0, spec.background, lab)
        cut = int(round(lab.shape[-1] * (1.0 - fraction)))
        train_labels.append(np.concatenate([lab[..., :cut], np.zeros_like(lab[..., cut:])], axis=-1))
        val_labels.append(np.concatenate([np.zeros_like(lab[..., :cut]), lab[..., cut:]], axis=-1))
    none = np.zeros(len(data.z), bool)
    return (LabeledSlices(data.images, train_labels, none, list(data.z), data.boxes),
            LabeledSlices(data.images, val_labels, none, list(data.z), data.boxes))


def _train_mode(net: torch.nn.Module, *, freeze_norm: bool) -> None:
    """Put ``net`` in training mode; with ``freeze_norm`` its batch norms keep their running statistics."""
    net.train()
    if freeze_norm:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


THRESHOLDS = np.round(np.arange(0.3, 0.801, 0.05), 2)  # candidates for each head's calibrated threshold
Z_BLENDS = (0.0, 0.1, 0.2, 0.3)  # candidates for each head's neighbour-slice weight (see predict_block)
# Fewer held-out positives than this say little about where to cut: on the phantom, 148
# lysosome voxels picked 0.75 and cost 0.016 Dice on the unseen slices.
MIN_CALIBRATION_VOXELS = 500


def _val_counts(model: TrainedModel, data: LabeledSlices, device: torch.device, thresholds: np.ndarray, *,
                around: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None, blends: Sequence[float] = (0.0,),
                freeze_norm: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection, predicted and true voxel counts per (blend, threshold, head) on held-out slices.

    around : the stacks of the slices below and above each held-out one (:func:`_around`),
        needed for blends other than 0.
    """
    if any(blends) and around is None:
        raise ValueError("blends other than 0 need the neighbouring slices (around)")
    model.net.eval()
    shape = (len(blends), len(thresholds), len(model.classes.heads))
    inter, ps, ts = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    h = model.halo
    # data.images are normalised already; predict_block normalises, so undo with an identity norm
    identity = TrainedModel(model.net, model.config, model.classes, Normalization(lo=-0.5, hi=0.5))

    def probs(stack: np.ndarray) -> np.ndarray:
        region = (slice(h, h + 1), slice(0, stack.shape[1]), slice(0, stack.shape[2]))
        return predict_block(identity, stack, region, window=512, overlap=32, device=device)[:, 0]

    for i in range(len(data.z)):
        p = probs(data.images[i])
        sides = probs(around[0][i]) + probs(around[1][i]) if around is not None else None
        target, weight = model.classes.targets(data.labels[i], complete=data.complete[i])
        w = weight > 0
        t = (target > 0.5) & w
        for b, blend in enumerate(blends):
            if not blend:
                q = p
            else:
                assert sides is not None  # checked on entry: blends other than 0 come with `around`
                q = (1 - 2 * blend) * p + blend * sides
            for k, threshold in enumerate(thresholds):
                pred = (q > threshold) & w
                inter[b, k] += (pred & t).sum((1, 2))
                ps[b, k] += pred.sum((1, 2))
                ts[b, k] += t.sum((1, 2))
    _train_mode(model.net, freeze_norm=freeze_norm)
    return inter, ps, ts


def _validate(model: TrainedModel, data: LabeledSlices, device: torch.device, *, freeze_norm: bool = False) -> dict[str, float]:
    """Hard Dice per head (threshold 0.5) on the weighted voxels of held-out slices."""
    inter, ps, ts = _val_counts(model, data, device, np.array([0.5]), freeze_norm=freeze_norm)
    return {name: float(2 * inter[0, 0, j] / (ps[0, 0, j] + ts[0, 0, j])) for j, name in enumerate(model.classes.heads) if ts[0, 0, j] > 0}


CALIBRATION_PASSES = 4  # calibrate() costs about this many validation passes (two neighbour slices each, counts)


def calibrate(model: TrainedModel, data: LabeledSlices, device: torch.device,
              around: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Per head, the threshold in THRESHOLDS and neighbour weight in Z_BLENDS with the best Dice
    on held-out slices; returns ``(thresholds, z_blend)``.

    A model trained on one slice is often biased one way on the others (on the SBEM crop a
    5-minute model over-called mitochondria, precision 0.64 and recall 0.86 at 0.5; a
    10-minute one under-called them and was cut at 0.35), and the held-out slice shows which
    way. A 2D model also judges each slice alone, and an organelle cut through on several
    serial sections is missed on one where it looks faint; mixing in the neighbours'
    probabilities (:func:`~segmentation.core.inference.predict_block`) bought about +0.015 Dice on the
    SBEM crop. Among candidates within 0.001 of the best, the least mixing wins, then the
    threshold nearest 0.5. Without ``around`` only thresholds are chosen. Heads with fewer than
    MIN_CALIBRATION_VOXELS positive held-out voxels keep 0.5 and no mixing (left out).
    """
    blends = Z_BLENDS if around is not None else (0.0,)
    inter, ps, ts = _val_counts(model, data, device, THRESHOLDS, around=around, blends=blends)
    thresholds, z_blend = {}, {}
    for j, name in enumerate(model.classes.heads):
        if ts[0, 0, j] < MIN_CALIBRATION_VOXELS:
            continue
        dice = 2 * inter[..., j] / np.maximum(ps[..., j] + ts[..., j], 1)  # (blend, threshold)
        near_best = zip(*np.nonzero(dice >= dice.max() - 1e-3))
        b, k = min(near_best, key=lambda bk: (blends[bk[0]], abs(THRESHOLDS[bk[1]] - 0.5)))
        thresholds[name] = float(THRESHOLDS[k])
        if blends[b]:
            z_blend[name] = float(blends[b])
    return thresholds, z_blend


class _Average:
    """Exponential moving average of a network's weights and buffers (see ``TrainConfig.ema``)."""

    def __init__(self, net: ResUNet, decay: float) -> None:
        self.net, self.decay, self.updates = copy.deepcopy(net), decay, 0

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.updates += 1
        keep = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, new in zip(self.net.state_dict().values(), net.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.lerp_(new, 1.0 - keep)
            else:
                avg.copy_(new)


def _init_net(config: ResUNetConfig, spec: ClassSpec, init: TrainedModel | None,
              encoder: PretrainedEncoder | None = None) -> ResUNet:
    net = ResUNet(config)
    if encoder is not None:  # shapes checked by the caller (encoder_mismatch)
        net.load_state_dict({**net.state_dict(), **encoder.state})
    if init is None:
        return net
    state = net.state_dict()
    for k, v in init.net.state_dict().items():
        if k in state and state[k].shape == v.shape:
            state[k] = v.clone()
    # heads of classes the old model knew keep their weights even when the class set changed
    old = list(init.classes.heads)
    last = f"head.{len(net.head) - 1}"
    for j, name in enumerate(spec.heads):
        if name in old:
            i = old.index(name)
            for part in ("weight", "bias"):
                state[f"{last}.{part}"][j] = init.net.state_dict()[f"{last}.{part}"][i]
    net.load_state_dict(state)
    return net


def train(
    image: Any,
    labels: Any,
    *,
    classes: Mapping[str, int] | ClassSpec,
    hierarchy: Mapping[str, str | None] | None = None,
    minutes: float = 10.0,
    device: str = "auto",
    init: TrainedModel | str | os.PathLike[str] | None = None,
    seed: int = 0,
    complete_slices: Iterable[int] = (),
    val_slices: Iterable[int] | None = None,
    config: TrainConfig = TrainConfig(),
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_bar: bool = False,
    deadline: float | None = None,
    encoder: PretrainedEncoder | str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train (or fine-tune) a ResUNet on sparse labels for at most ``minutes``.

    Parameters
    ----------
    image : array-like, shape (Z, Y, X) or (Y, X), numeric (numpy, zarr, ...)
    labels : array-like, same shape, integer: 0 = unlabeled, else class values.
    classes : class name -> label value (``{"background": 1, "mitochondrion": 2}``) or a ClassSpec.
    hierarchy : child -> parent names; the paper's nesting when None (ignored for a ClassSpec).
    minutes : wall-clock budget for the optimisation loop.
    device : "auto" (CUDA when available), "cpu" or "cuda". CUDA uses AMP.
    init : model (or model file) to fine-tune from; its architecture is kept.
    seed : seeds numpy, torch and python's random.
    complete_slices : Z indices whose unpainted voxels count as background.
    val_slices : Z indices to hold out for validation instead of the usual split (empty: none;
        those not labeled are ignored); pass an earlier round's ``val_slices`` when fine-tuning so
        the starting and the tuned weights are judged on the same voxels and newly painted
        regions always train. At least one labeled slice must remain for training.
    on_progress, should_stop : callbacks (see module docstring).
    deadline : a ``time.perf_counter()`` value by which the call returns, setup, validation
        and calibration included (``minutes`` alone bounds only the optimisation loop). The
        loop then ends when the next step and the work after the loop would pass it; that
        work is estimated from a timed validation pass (calibration counts as
        ``CALIBRATION_PASSES`` of them). At least one step is always taken.
    encoder : a pretrained encoder (or its file, :mod:`segmentation.core.encoder`) to start a new
        model's encoder from; the rest of the network starts fresh. Not with ``init``; its
        in_slices, width, depth and scale must be the config's. Its provenance is recorded
        in ``meta["encoder"]``.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> result = train(img, lab, classes={"background": 1, "mitochondrion": 2}, minutes=1)  # doctest: +SKIP
    >>> save_model("mito.pt", result.model)  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    if len(image.shape) == 2:
        image, labels = np.asarray(image)[None], np.asarray(labels)[None]
    if tuple(image.shape) != tuple(labels.shape) or len(image.shape) != 3:
        raise ValueError(f"image shape {tuple(image.shape)} and labels shape {tuple(labels.shape)} must be equal ZYX")
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if config.val_split not in ("slices", "columns"):
        raise ValueError(f"val_split must be 'slices' or 'columns', got {config.val_split!r}")
    if not 0.0 < config.lr_floor <= 1.0:
        raise ValueError(f"lr_floor must be in (0, 1], got {config.lr_floor}")
    spec = classes if isinstance(classes, ClassSpec) else ClassSpec.build(classes, hierarchy)
    dev = resolve_device(device)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    complete = set(int(z) for z in complete_slices)

    init_model = load_model(init, device="cpu") if init is not None else None
    scale = init_model.scale if init_model is not None else config.scale
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if init_model is not None and encoder is not None:
        raise ValueError("give init (a model to fine-tune) or encoder (pretrained weights for a new one), not both")
    if init_model is not None:
        c = init_model.config
        net_config = ResUNetConfig(in_slices=c.in_slices, out_channels=len(spec.heads), base_width=c.base_width, depth=c.depth)
    else:
        net_config = ResUNetConfig(config.in_slices, len(spec.heads), config.base_width, config.depth)
    pretrained = load_encoder(encoder) if encoder is not None else None
    if pretrained is not None and (why := encoder_mismatch(pretrained, net_config, scale)):
        raise ValueError(f"the pretrained encoder does not fit: {why}")
    norm = Normalization.measure(image, seed=seed)
    halo = net_config.in_slices // 2
    cuda = dev.type == "cuda"
    patch = config.patch or (256 if cuda else 160)
    patch = -(-patch // net_config.divisor) * net_config.divisor
    batch = config.batch or (16 if cuda else 4)
    data = _gather(image, labels, _candidate_slices(labels, complete), halo, norm, complete, scale,
                   margin=patch * scale, check=spec.check_labels)
    zs = sorted(set(data.z))
    if not zs:
        raise ValueError("labels hold no labeled voxel (all 0) and no slice is marked complete")
    if val_slices is None:
        train_z, val_z = _split(zs, config.val_fraction)
    else:
        held = set(int(z) for z in val_slices)
        train_z, val_z = [z for z in zs if z not in held], [z for z in zs if z in held]
        if not train_z:
            raise ValueError(f"val_slices {sorted(held)} leave no labeled slice to train on (labeled: {zs})")
    val_data: LabeledSlices | None
    if config.val_split == "columns" and val_slices is None:
        train_z, val_z = zs, zs
        train_data, val_data = _split_columns(data, spec, config.val_fraction)
    else:
        held = set(val_z)
        train_data = data.subset([i for i, z in enumerate(data.z) if z not in held])
        val_data = data.subset([i for i, z in enumerate(data.z) if z in held]) if val_z else None
    sampler = PatchSampler(train_data, spec, patch=patch, rng=rng, label_bias=config.label_bias, balance=config.slice_balance,
                           elastic=config.elastic, intensity=config.intensity, gap_weight=config.gap_weight)
    net = _init_net(net_config, spec, init_model, pretrained).to(dev)
    freeze_norm = init_model is not None and config.finetune_freeze_norm
    _train_mode(net, freeze_norm=freeze_norm)
    model = TrainedModel(net, net_config, spec, norm, scale=scale)
    average = _Average(net, config.ema) if config.ema > 0 else None
    judged = TrainedModel(average.net, net_config, spec, norm, scale=scale) if average is not None else model
    lr = config.lr * (config.finetune_lr_factor if init_model is not None else 1.0)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    reference = None  # the starting weights, frozen: which labeled voxels they get wrong (hard_weight)
    if init_model is not None and config.hard_weight != 1.0 and list(init_model.classes.heads) == list(spec.heads):
        reference = copy.deepcopy(init_model.net).to(dev).eval()
        reference.requires_grad_(False)

    val_pass = finish = 0.0  # seconds of one validation pass, and of the work after the loop (deadline only)
    if deadline is not None and val_data is not None:
        timed = time.perf_counter()
        _validate(judged, val_data, dev, freeze_norm=freeze_norm)
        val_pass = time.perf_counter() - timed
        finish = val_pass * (1 + (CALIBRATION_PASSES if config.calibrate else 0))
    budget = minutes * 60.0
    if deadline is not None:  # the learning-rate schedule then runs out at the deadline too
        budget = max(1e-3, min(budget, deadline - time.perf_counter() - finish))
    report_every = max(5.0, min(60.0, budget / 15.0))
    curve: list[tuple[int, float | None, float | None]] = []
    best_val, best_state, best_per_class, stale = -1.0, None, {}, 0
    losses: list[float] = []
    step, stopped, last_report = 0, "budget", time.perf_counter()
    loop_start = time.perf_counter()
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=int(budget), unit="s", desc="train", leave=False)

    def report() -> bool:
        nonlocal best_val, best_state, best_per_class, stale, losses
        elapsed = time.perf_counter() - loop_start
        val = None
        if val_data is not None:
            per_class = _validate(judged, val_data, dev, freeze_norm=freeze_norm)
            val = float(np.mean(list(per_class.values()))) if per_class else None
            # improvement resets patience; a tie keeps the later weights (lower loss, better calibrated)
            if val is not None:  # held-out voxels without any class say nothing: no patience spent
                stale = 0 if val > best_val + 1e-3 else stale + 1
            if not config.select_best:
                best_per_class = per_class  # the last weights are kept: theirs is the Dice to report
            elif val is not None and val >= best_val - 1e-3:
                best_state, best_per_class = copy.deepcopy(judged.net.state_dict()), per_class
            if val is not None:
                best_val = max(best_val, val)
        mean_loss = float(np.mean(losses)) if losses else None
        losses = []
        curve.append((step, mean_loss, val))
        if on_progress is not None:
            on_progress(TrainProgress(step, elapsed, max(0.0, budget - elapsed), mean_loss, val, best_val if best_val >= 0 else None))
        if bar is not None:
            bar.n = min(int(elapsed), int(budget))
            bar.set_postfix(loss=mean_loss, val=val)
            bar.refresh()
        return val_data is not None and config.select_best and stale >= config.patience

    if init_model is not None and val_data is not None and config.select_best:
        report()  # the starting weights are a candidate: fine-tuning never returns worse on validation
    while True:
        if should_stop is not None and should_stop():
            stopped = "cancelled"
            break
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(_progress(step, time.perf_counter() - loop_start, budget, config.max_steps),
                                         config.lr_floor)
        x, t, w = sampler.batch(batch, augment_data=config.augment)
        xt, tt, wt = (torch.from_numpy(a).to(dev, non_blocking=True) for a in (x, t, w))
        with torch.autocast(dev.type, dtype=torch.float16, enabled=cuda):
            logits = net(xt)
            if reference is not None:
                with torch.no_grad():
                    wt = hard_example_weight(wt, tt, reference(xt), config.hard_weight)
        losses.append(optimizer_step(opt, scaler, masked_loss(logits, tt, wt)))
        if average is not None:
            average.update(net)
        step += 1
        now = time.perf_counter()
        if config.max_steps is not None and step >= config.max_steps:
            stopped = "max_steps"
            break
        if now - loop_start >= budget:
            break
        if deadline is not None:
            report_due = now - last_report >= report_every
            if now + (now - loop_start) / step + finish + (val_pass if report_due else 0.0) >= deadline:
                break
        if now - last_report >= report_every:
            last_report = now
            if report():
                stopped = "early_stop"
                break
    if stopped != "early_stop":
        report()
    if bar is not None:
        bar.close()
    if best_state is None and average is not None:
        best_state = average.net.state_dict()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    if config.calibrate and val_data is not None:
        around = _around(image, val_data, halo, norm, scale) if image.shape[0] > 1 else None
        thresholds, z_blend = calibrate(model, val_data, dev, around)
    elif init_model is not None:  # nothing held out: a fine-tuned model keeps its starting point's calibration
        thresholds, z_blend = (dict(init_model.meta.get(key) or {}) for key in ("thresholds", "z_blend"))
    else:
        thresholds, z_blend = {}, {}
    seconds = time.perf_counter() - t_start
    model.meta = {
        "seed": seed, "minutes": minutes, "steps": step, "stopped": stopped, "device": str(dev),
        "patch": patch, "batch": batch, "scale": scale, "in_slices": net_config.in_slices, "augment": config.augment,
        "elastic": config.elastic, "intensity": config.intensity, "ema": config.ema, "hard_weight": config.hard_weight, "select_best": config.select_best,
        "gap_weight": config.gap_weight,
        "train_slices": train_z, "val_slices": val_z,
        "curve": [list(c) for c in curve], "val_dice": best_per_class,
        "labeled_voxels": int(sum(int((lab != 0).sum()) for lab in data.labels)),
        "min_object_px": smallest_objects(train_data, spec, scale),
        "object_floor_px": smallest_objects(train_data, spec, scale, whole=True), "thresholds": thresholds, "z_blend": z_blend,
        "init": None if init is None else (str(init) if not isinstance(init, TrainedModel) else "model"),
        "encoder": None if pretrained is None else {
            **pretrained.meta, "file": None if isinstance(encoder, PretrainedEncoder) else str(encoder)},
    }
    log.info("trained %d steps in %.0f s (%s), val dice %s", step, seconds, stopped, best_per_class)
    return TrainResult(model, curve, best_per_class, train_z, val_z, step, stopped, seconds, model.meta)
