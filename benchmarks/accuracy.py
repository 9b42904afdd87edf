"""Mitochondria Dice on real EM with sparse labels: train on ~1 slice in 10, score the rest.

For every labeled volume in ../shared/data (see each README):

* cdeep3m_sbem_mito (20 slices) and drosophila_vnc_sstem (10 slices): keep the labels of
  slices z = 5, 15, ... (about one in ten), train within the time budget (when two slices
  are kept, one is held out for validation, as ``train`` always does), predict the whole
  volume and score mitochondria Dice on every slice that was NOT kept.
* hela_sbfsem (3 separate 2D pages): train on page 0, score pages 1 and 2. Only the
  central cell is annotated, so both the training labels and the scoring are restricted
  to a region around the annotated mitochondria (their bounding box grown by
  ``--hela-margin`` pixels); outside it labels are 0 (unlabeled) and voxels are not scored.

Never scores a slice whose labels were used for training or validation.

Without flags it trains and predicts as a user would: :func:`segmentation.core.defaults.training_defaults`
for the data set's voxel size (from its README, :data:`VOXEL_NM`) and the device, prediction
with the TTA the model records; each flag given replaces one of those choices and is listed
in the JSON (``overrides``). ``benchmarks/unseen.py`` scores regions the labels never came from.

Usage (from the project root)::

    .venv/bin/python benchmarks/accuracy.py --minutes 10 [--threads 1] [--datasets cdeep3m_sbem_mito ...] [--device auto]

Prints a table and writes benchmarks/results/accuracy-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._training import add_dataset_run_flags, defaults_config  # noqa: E402
from segmentation.core.defaults import defaults_meta  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.metrics import dice_iou  # noqa: E402
from segmentation.core.modelfile import load_model, prediction_tta, save_model  # noqa: E402
from segmentation.core.training import train  # noqa: E402

DATA = Path(os.environ.get("EMPORTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLASSES = {"background": 1, "mitochondrion": 2}
#: ZYX voxel size (nm) of each data set, as its README states it (the TIFFs do not).
VOXEL_NM = {"cdeep3m_sbem_mito": (40.0, 5.9, 5.9), "drosophila_vnc_sstem": (50.0, 4.6, 4.6), "hela_sbfsem": (50.0, 10.0, 10.0)}


def _region(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    return (slice(max(ys.min() - margin, 0), ys.max() + margin + 1), slice(max(xs.min() - margin, 0), xs.max() + margin + 1))


def load(name: str, hela_margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], np.ndarray]:
    """image, truth (1/2), sparse training labels, kept slices, score mask (bool)."""
    image = tifffile.imread(DATA / name / "image.tif")
    mito = tifffile.imread(DATA / name / "mito.tif") > 0
    truth = np.where(mito, 2, 1).astype(np.uint8)
    sparse = np.zeros_like(truth)
    score = np.ones(truth.shape, bool)
    if name == "hela_sbfsem":
        kept = [0]
        score[:] = False
        for z in range(truth.shape[0]):
            score[(z, *_region(mito[z], hela_margin))] = True
        sparse[0][score[0]] = truth[0][score[0]]
    else:
        kept = list(range(5, truth.shape[0], 10))
        sparse[kept] = truth[kept]
    score[kept] = False
    return image, truth, sparse, kept, score


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_run_flags(p, minutes=10.0, saved_as="accuracy")
    p.add_argument("--reuse", action="store_true", help="score saved models instead of training")
    args = p.parse_args()
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        image, truth, sparse, kept, score = load(name, args.hela_margin)
        defaults, config, overrides = defaults_config(args, VOXEL_NM[name], patch=args.patch)
        t0 = time.perf_counter()
        saved = out_dir / f"accuracy-{name}.pt"
        if args.reuse and saved.exists():  # score a model this script trained and saved before
            model = load_model(saved)
            meta = model.meta
        else:
            res = train(image, sparse, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed,
                        config=config, progress_bar=True)
            model, meta = res.model, res.meta
            model.meta.update(defaults_meta(defaults, overrides=overrides))
            if args.save_models:
                save_model(saved, model)
        t1 = time.perf_counter()
        tta = prediction_tta(model) if args.tta is None else args.tta
        pred = predict_volume(model, image, device=args.device, tta=tta, progress_bar=True)
        t2 = time.perf_counter()
        thresholds, z_blend = model.meta.get("thresholds") or {}, model.meta.get("z_blend") or {}
        plain = None  # the same model at 0.5 without mixing slices, to show what calibration bought
        if thresholds or z_blend:
            plain = predict_volume(model, image, device=args.device, tta=tta, thresholds={}, z_blend={}, progress_bar=True)
        scored = [z for z in range(truth.shape[0]) if score[z].any()]
        scored_truth = np.where(score, truth, 0)  # 0 = not scored
        per_slice = {z: dice_iou(pred[z], scored_truth[z], classes=CLASSES, ignore=0)["mitochondrion"] for z in scored}
        pooled = dice_iou(pred, scored_truth, classes=CLASSES, ignore=0)["mitochondrion"]
        # slices next to a training slice see its labels through the neighbour mixing (z_blend): score without them too
        trained_z = meta.get("train_slices") or []
        far = [z for z in scored if all(abs(z - k) > 1 for k in trained_z)] if z_blend and truth.shape[0] > 1 else scored
        far_dice = dice_iou(pred[far], scored_truth[far], classes=CLASSES, ignore=0)["mitochondrion"]["dice"]
        at_half = pooled if plain is None else dice_iou(plain, scored_truth, classes=CLASSES, ignore=0)["mitochondrion"]
        m = score
        row = {
            "dataset": name, "kept_slices": kept, "scored_slices": scored,
            "mito_dice": pooled["dice"], "mito_iou": pooled["iou"], "thresholds": thresholds, "z_blend": z_blend,
            "mito_dice_uncalibrated": at_half["dice"],
            "mito_dice_away_from_training": far_dice, "slices_away_from_training": far,
            "mito_dice_per_slice": {str(z): r["dice"] for z, r in per_slice.items()},
            "val_slices": meta.get("val_slices"), "val_dice": meta.get("val_dice"), "steps": meta.get("steps"),
            "stopped": meta.get("stopped"), "train_slices": meta.get("train_slices"), "scale": model.scale,
            "patch": meta.get("patch"), "batch": meta.get("batch"), "in_slices": model.config.in_slices, "tta": tta,
            "defaults": defaults.to_dict(), "overrides": overrides,
            "train_s": round(t1 - t0, 1), "predict_s": round(t2 - t1, 1),
            "scored_voxels": int(m.sum()), "labeled_voxels": int((sparse > 0).sum()),
        }
        rows.append(row)
        print(f"{name:22s} mito Dice {pooled['dice']:.3f} IoU {pooled['iou']:.3f} (uncalibrated: {at_half['dice']:.3f}; not next to a training slice: {far_dice:.3f}; "
              f"thresholds {thresholds}, z_blend {z_blend})  steps {meta.get('steps')} ({meta.get('stopped')}) "
              f"train {t1 - t0:.0f}s predict {t2 - t1:.0f}s  trained on z={meta.get('train_slices')} val z={meta.get('val_slices')}", flush=True)
    print()
    print(f"{'dataset':22s} {'kept':>8s} {'scored slices':>14s} {'mito Dice':>9s} {'IoU':>6s} {'steps':>6s}")
    for r in rows:
        print(f"{r['dataset']:22s} {str(r['kept_slices']):>8s} {len(r['scored_slices']):>14d} {r['mito_dice']:9.3f} {r['mito_iou']:6.3f} {r['steps']:6d}")
    info = {
        "minutes": args.minutes, "device": args.device, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "width": args.width,
        "seed": args.seed, "torch": torch.__version__, "args": vars(args), "rows": rows,
    }
    path = out_dir / f"accuracy-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(info, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
