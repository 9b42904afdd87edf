"""Mitochondria Dice next to the labels and on a region the labels never came from, side by side.

The figures of ``benchmarks/accuracy.py`` are on slices next to the painted ones. A lab applies a
model to regions whose content the labels never showed; this protocol scores such a region for
every data set in ../shared/data, with the same model, trained and predicted through the default
path (:func:`segmentation.core.defaults.training_defaults` for the data set's voxel size and the
device, and the TTA the model records). Neither the training nor the validation labels (train
holds one labeled slice out) come from the unseen region.

Splits (:func:`split`):

* **Slice block** where the crop is deep enough (cdeep3m_sbem_mito, 20 slices): slices 2 and 7
  are labeled (one trains, one validates); *near* = the unlabeled slices within 5 of a labeled
  one (as far as accuracy.py's scored slices lie); *unseen* = every slice at least
  :data:`GAP` = 8 slices from every labeled one (z 15-19).
* **Quadrant** where it is not (drosophila_vnc_sstem, 10 slices): slice 5 is labeled except its
  bottom-right quadrant and a :data:`GUARD`-pixel band around it; *near* = the other slices outside
  that band; *unseen* = the quadrant on every slice, the labeled slice included.
* **hela_sbfsem** (three separate pages 34-90 sections apart; only the central cell is labeled,
  so both masks stay inside the box around its mitochondria, as in accuracy.py): page 0's box is
  labeled except its bottom-right quarter and the guard band; *near* = that quarter of page 0;
  *unseen* = pages 1 and 2.

Usage (from the project root)::

    .venv/bin/python benchmarks/unseen.py --minutes 4 --threads 1 --datasets cdeep3m_sbem_mito
    .venv/bin/python benchmarks/unseen.py --steps 700 --minutes 30 --threads 1 --datasets cdeep3m_sbem_mito --intensity em

``--steps`` caps training at a number of steps, so that options compare at equal steps whatever
the machine's load. Prints both figures with the voxel counts behind them and the load average,
and writes benchmarks/results/unseen-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._training import add_dataset_run_flags, defaults_config  # noqa: E402
from benchmarks.accuracy import CLASSES, DATA, VOXEL_NM, _region  # noqa: E402
from segmentation.core.defaults import defaults_meta  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.metrics import dice_iou  # noqa: E402
from segmentation.core.modelfile import prediction_tta, save_model  # noqa: E402
from segmentation.core.training import train  # noqa: E402

#: Fewest slices between the unseen block and any labeled slice.
GAP = 8
#: Pixels around a held-out quadrant that are neither labeled nor scored as near, so no object
#: straddling the quadrant's edge is half taught.
GUARD = 64
#: Unlabeled slices this close to a labeled one count as near (accuracy.py's farthest scored slice).
NEAR = 5
#: Labeled slices of the slice-block split, and the fewest unseen slices it needs.
BLOCK_LABELED = (2, 7)
MIN_UNSEEN_SLICES = 4


@dataclass
class Split:
    """Training labels and the two scored regions of one data set.

    sparse : (Z, Y, X) uint8 training labels (0 unlabeled, 1 background, 2 mitochondrion).
    near, unseen : (Z, Y, X) bool score masks; never overlap each other or a labeled voxel.
    kind, near_what, unseen_what : how they were drawn, in words.
    """

    sparse: np.ndarray
    near: np.ndarray
    unseen: np.ndarray
    kind: str
    near_what: str
    unseen_what: str


def _quadrant(shape: tuple[int, int], box: tuple[slice, slice], grow: int) -> tuple[slice, slice]:
    """The bottom-right quarter of ``box`` (in a plane of ``shape``), grown by ``grow`` toward its centre."""
    ys, xs = box
    cy, cx = (ys.start + ys.stop) // 2, (xs.start + xs.stop) // 2
    return slice(max(cy - grow, 0), min(ys.stop, shape[0])), slice(max(cx - grow, 0), min(xs.stop, shape[1]))


def split(name: str, truth: np.ndarray, mito: np.ndarray, *, hela_margin: int = 100) -> Split:
    """The labels to train on and the near/unseen score masks of data set ``name`` (see the module docstring).

    truth : (Z, Y, X) uint8, 1 background / 2 mitochondrion. mito : (Z, Y, X) bool.
    """
    depth, h, w = truth.shape
    sparse = np.zeros_like(truth)
    near = np.zeros(truth.shape, bool)
    unseen = np.zeros(truth.shape, bool)
    if name == "hela_sbfsem":
        boxes = [_region(mito[z], hela_margin) for z in range(depth)]
        held, guarded = _quadrant((h, w), boxes[0], 0), _quadrant((h, w), boxes[0], GUARD)
        sparse[0][boxes[0]] = truth[0][boxes[0]]
        sparse[0][guarded] = 0
        near[0][held] = True
        for z in range(1, depth):
            unseen[z][boxes[z]] = True
        return Split(sparse, near, unseen, "pages", "page 0: the quarter of the cell's box never labeled",
                     f"pages 1-{depth - 1} (34-90 sections away), the cell's box")
    whole = (slice(0, h), slice(0, w))
    if depth >= BLOCK_LABELED[-1] + GAP + MIN_UNSEEN_SLICES:
        labeled = list(BLOCK_LABELED)
        sparse[labeled] = truth[labeled]
        for z in range(depth):
            distance = min(abs(z - k) for k in labeled)
            if distance >= GAP:
                unseen[z] = True
            elif 0 < distance <= NEAR:
                near[z] = True
        far = [z for z in range(depth) if unseen[z, 0, 0]]
        return Split(sparse, near, unseen, "slices", f"unlabeled slices within {NEAR} of z {labeled}",
                     f"z {far[0]}-{far[-1]}, at least {GAP} slices from every labeled one")
    z0 = depth // 2
    held, guarded = _quadrant((h, w), whole, 0), _quadrant((h, w), whole, GUARD)
    sparse[z0] = truth[z0]
    sparse[z0][guarded] = 0
    near[:] = True
    near[z0] = False
    near[:, guarded[0], guarded[1]] = False
    unseen[:, held[0], held[1]] = True
    return Split(sparse, near, unseen, "quadrant", f"slices other than z {z0}, outside the held-out quadrant",
                 f"the bottom-right quadrant ({held[0].stop - held[0].start}x{held[1].stop - held[1].start}) of every "
                 f"slice, never labeled (z {z0} labeled elsewhere)")


def _dice(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    scored = np.where(mask, truth, 0)
    r = dice_iou(pred, scored, classes=CLASSES, ignore=0)["mitochondrion"]
    return {"dice": r["dice"], "iou": r["iou"], "voxels": int(mask.sum()),
            "mito_voxels": int(((truth == 2) & mask).sum())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_run_flags(p, minutes=4.0, saved_as="unseen")
    p.add_argument("--steps", type=int, help="train at most this many steps (minutes then only cap it): on a loaded "
                   "machine equal minutes give runs unequal steps, so compare options at equal steps")
    args = p.parse_args()
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        if name not in VOXEL_NM:
            p.error(f"unknown data set {name!r} (known: {', '.join(VOXEL_NM)})")
        image = tifffile.imread(DATA / name / "image.tif")
        mito = tifffile.imread(DATA / name / "mito.tif") > 0
        truth = np.where(mito, 2, 1).astype(np.uint8)
        s = split(name, truth, mito, hela_margin=args.hela_margin)
        defaults, config, overrides = defaults_config(args, VOXEL_NM[name], patch=args.patch, max_steps=args.steps)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        res = train(image, s.sparse, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed,
                    config=config, progress_bar=True)
        model = res.model
        model.meta.update(defaults_meta(defaults, overrides=overrides))
        if args.save_models:
            save_model(out_dir / f"unseen-{name}.pt", model)
        t1 = time.perf_counter()
        tta = prediction_tta(model) if args.tta is None else args.tta
        pred = predict_volume(model, image, device=args.device, tta=tta, progress_bar=True)
        t2 = time.perf_counter()
        near, unseen = _dice(pred, truth, s.near), _dice(pred, truth, s.unseen)
        per_slice = {str(z): _dice(pred[z], truth[z], (s.near | s.unseen)[z])["dice"] for z in range(truth.shape[0])
                     if (s.near | s.unseen)[z].any()}
        row = {
            "dataset": name, "voxel_size_nm": VOXEL_NM[name], "split": s.kind, "near_what": s.near_what,
            "unseen_what": s.unseen_what, "near": near, "unseen": unseen, "dice_per_slice": per_slice,
            "labeled_slices": sorted({int(z) for z in np.nonzero(s.sparse.any(axis=(1, 2)))[0]}),
            "labeled_voxels": int((s.sparse > 0).sum()), "train_slices": res.train_slices, "val_slices": res.val_slices,
            "val_dice": res.val_dice, "steps": res.steps, "stopped": res.stopped, "scale": model.scale,
            "patch": res.meta.get("patch"), "batch": res.meta.get("batch"), "in_slices": model.config.in_slices,
            "tta": tta, "thresholds": model.meta.get("thresholds"), "z_blend": model.meta.get("z_blend"),
            "defaults": defaults.to_dict(), "overrides": overrides, "train_s": round(t1 - t0, 1),
            "predict_s": round(t2 - t1, 1), "load_before": load_before, "load_after": os.getloadavg(),
        }
        rows.append(row)
        print(f"{name:22s} near {near['dice']:.3f} ({near['voxels']} voxels, {near['mito_voxels']} mito)  "
              f"unseen {unseen['dice']:.3f} ({unseen['voxels']} voxels, {unseen['mito_voxels']} mito)  "
              f"scale {model.scale} patch {row['patch']} batch {row['batch']} slices {model.config.in_slices} tta {tta}  "
              f"steps {res.steps} ({res.stopped}) train {t1 - t0:.0f}s predict {t2 - t1:.0f}s  "
              f"load {load_before[0]:.1f} -> {row['load_after'][0]:.1f}", flush=True)
    print()
    print(f"{'dataset':22s} {'split':>8s} {'near Dice':>9s} {'unseen Dice':>11s} {'steps':>6s}")
    for r in rows:
        print(f"{r['dataset']:22s} {r['split']:>8s} {r['near']['dice']:9.3f} {r['unseen']['dice']:11.3f} {r['steps']:6d}")
    info = {
        "minutes": args.minutes, "device": args.device, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "seed": args.seed,
        "torch": torch.__version__, "args": vars(args), "rows": rows,
    }
    path = out_dir / f"unseen-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(info, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
