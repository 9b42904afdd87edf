"""Per-class Dice on the synthetic phantom with sparse labels: every class the app trains.

The phantom (segmentation/core/phantom.py) knows the truth of every class: cell interior,
nucleus, nucleolus, mitochondrion, endosome and lysosome. The label volume holds the most
specific class of each voxel (as an annotator paints it: nucleolus over nucleus over cell,
background outside cells). Only every ``--every``-th slice keeps its labels; the model is
trained on those within the time budget and scored on every slice it never saw.

Dice is nested as the classes are: a voxel counts as nucleus when it is nucleus or
nucleolus, as cell when it is any class inside a cell.

Usage (from the project root)::

    .venv/bin/python benchmarks/phantom_accuracy.py --minutes 3 [--device auto] [--seeds 0 1]

Prints a table and writes benchmarks/results/phantom-accuracy-<time>.json.
"""
from __future__ import annotations

import argparse
import inspect
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._training import add_training_flags, train_config  # noqa: E402
from segmentation.core.classes import default_parents  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.modelfile import save_model  # noqa: E402
from segmentation.core.phantom import CLASS_VALUES, make_phantom  # noqa: E402
from segmentation.core.training import context_slices, train  # noqa: E402

CLASSES = {"background": 1, "cell": 2, "nucleus": 3, "nucleolus": 4, "mitochondrion": 5, "endosome": 6,
           "lysosome": 7}


def label_volume(seed: int, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels): labels hold the innermost class value of CLASSES for every voxel."""
    ph = make_phantom(shape, seed=seed)
    labels = np.where(ph.interior, CLASSES["cell"], CLASSES["background"]).astype(np.uint8)
    for name, value in CLASS_VALUES.items():
        labels[ph.labels == value] = CLASSES[name]
    return ph.image, labels


def nested_dice(pred: np.ndarray, truth: np.ndarray, parents: dict[str, str | None]) -> dict[str, float]:
    """Dice of each class counting its descendants as inside it."""
    def members(name: str) -> list[int]:
        out, stack = [], [name]
        while stack:
            n = stack.pop()
            out.append(CLASSES[n])
            stack += [c for c, p in parents.items() if p == n]
        return out

    scores = {}
    for name in CLASSES:
        if name == "background":
            continue
        values = members(name)
        p, t = np.isin(pred, values), np.isin(truth, values)
        denom = int(p.sum()) + int(t.sum())
        scores[name] = 2.0 * int((p & t).sum()) / denom if denom else 1.0
    return scores


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--shape", type=int, nargs=3, default=[48, 256, 256])
    p.add_argument("--every", type=int, default=6, help="keep the labels of one slice in this many")
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--tta", action="store_true", help="predict with flip test-time augmentation")
    p.add_argument("--save-model", default="", help="also save each seed's model here (a directory)")
    add_training_flags(p, scale=1, in_slices=None,
                       in_slices_help="input slices (default: as the app picks for the phantom's isotropic voxels, 5)")
    args = p.parse_args()
    parents = default_parents([n for n in CLASSES if n != "background"])
    suffix = f"-{args.tag}" if args.tag else ""
    if args.in_slices is None:
        args.in_slices = context_slices(inspect.signature(make_phantom).parameters["voxel_size_nm"].default)
    rows = []
    for seed in args.seeds:
        image, truth = label_volume(seed, tuple(args.shape))
        kept = list(range(args.every // 2, truth.shape[0], args.every))
        sparse = np.zeros_like(truth)
        sparse[kept] = truth[kept]
        t0 = time.perf_counter()
        res = train(image, sparse, classes=CLASSES, hierarchy=parents, minutes=args.minutes, device=args.device,
                    seed=seed, config=train_config(args), progress_bar=True)
        t1 = time.perf_counter()
        if args.save_model:
            folder = Path(args.save_model)
            folder.mkdir(parents=True, exist_ok=True)
            save_model(folder / f"phantom-seed{seed}{suffix}.pt", res.model)
        unseen = [z for z in range(truth.shape[0]) if z not in kept]
        dice = nested_dice(predict_volume(res.model, image, device=args.device, tta=args.tta)[unseen], truth[unseen], parents)
        thresholds, z_blend = res.model.meta.get("thresholds") or {}, res.model.meta.get("z_blend") or {}
        # the same model at 0.5 and without mixing slices: what calibration bought
        plain = predict_volume(res.model, image, device=args.device, tta=args.tta, thresholds={}, z_blend={})
        uncalibrated = nested_dice(plain[unseen], truth[unseen], parents)
        rows.append({"seed": seed, "kept_slices": kept, "scored_slices": len(unseen), "dice": dice,
                     "thresholds": thresholds, "z_blend": z_blend, "dice_uncalibrated": uncalibrated, "steps": res.meta.get("steps"),
                     "train_s": round(t1 - t0, 1)})
        print(f"seed {seed}: " + "  ".join(f"{k} {v:.3f} ({uncalibrated[k]:.3f})" for k, v in dice.items())
              + f"  ({res.meta.get('steps')} steps; in brackets: uncalibrated; thresholds {thresholds}, z_blend {z_blend})", flush=True)
    print()
    print(f"{'class':14s} " + " ".join(f"seed {r['seed']:>3d}" for r in rows) + "   min")
    for name in rows[0]["dice"]:
        vals = [r["dice"][name] for r in rows]
        print(f"{name:14s} " + " ".join(f"{v:8.3f}" for v in vals) + f" {min(vals):6.3f}")
    info = {"minutes": args.minutes, "shape": args.shape, "every": args.every, "device": args.device,
            "cuda": torch.cuda.is_available(), "threads": torch.get_num_threads(), "width": args.width,
            "scale": args.scale, "tta": args.tta, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "args": vars(args), "rows": rows}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"phantom-accuracy-{time.strftime('%Y%m%d-%H%M%S')}{suffix}.json"
    path.write_text(json.dumps(info, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
