"""The correction loop, simulated: do model-suggested regions beat random ones?

For each dataset (default: the SBEM crop), round 0 trains on about one slice in ten
(z = 5, 15, ...). The other slices are split once: even slices are the evaluation set
(never labeled, never suggested), odd ones the pool an annotator may paint. Each further
round the simulated annotator paints the truth inside ``k`` tiles of the pool, the model
is fine-tuned from the previous round (``init``) for ``--round-minutes``, and
mitochondria Dice is scored on the evaluation slices. Every round validates on round 0's
validation slice (``train(..., val_slices=...)``), so painted tiles always train and the
starting and tuned weights of a round are judged on the same voxels. Two arms run in the same process
from the same round-0 model: tiles chosen by :func:`segmentation.core.active.suggest_regions`'
ranking of the whole volume (as the app ranks it), and tiles chosen at random among unlabeled pool tiles (the baseline).

Usage (from the project root)::

    .venv/bin/python benchmarks/loop.py [--datasets cdeep3m_sbem_mito] [--rounds 3] [--k 4] [--tile 256]
        [--minutes 5] [--round-minutes 2] [--round-steps N] [--base MODEL.pt] [--tta] [--threads 1]

``--round-steps`` fine-tunes for exactly N steps instead of a wall-clock budget, so both arms
get the same optimisation on a shared machine (the time budget then only caps it at an
hour). ``--base`` loads the round-0 model from MODEL.pt when it exists (else trains it and
saves it there), to compare variants of the later rounds without retraining round 0.

Prints Dice per round for both arms with the labeled voxel counts; writes
benchmarks/results/loop-<time>.json. ``benchmarks/loop_summary.py`` averages runs of several seeds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.active import rank_tiles, tile_scores  # noqa: E402
from segmentation.core.inference import predict_probabilities, predict_volume  # noqa: E402
from segmentation.core.metrics import dice_iou  # noqa: E402
from segmentation.core.modelfile import load_model, save_model  # noqa: E402
from segmentation.core.training import TrainConfig, train  # noqa: E402

DATA = Path(os.environ.get("EMPORTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLASSES = {"background": 1, "mitochondrion": 2}
# Section thickness over pixel size (the datasets' READMEs), so that suggestions spread physically.
Z_SPACING = {"cdeep3m_sbem_mito": 40 / 5.9, "drosophila_vnc_sstem": 50 / 4.6, "hela_sbfsem": 50 / 10}


def split(Z: int) -> tuple[list[int], list[int], list[int]]:
    """(kept, eval_z, pool): round 0's labeled slices (one in ten), the evaluation slices (the
    other even ones, never labeled) and the pool an annotator may paint (the other odd ones)."""
    kept = list(range(5, Z, 10))
    return kept, [z for z in range(0, Z, 2) if z not in kept], [z for z in range(1, Z, 2) if z not in kept]


def _score(model, image, truth, eval_z, device) -> tuple[float, float]:
    """Mitochondria Dice on the evaluation slices as the app predicts them (each slice mixed with
    its neighbours by the model's ``z_blend``), and with every slice judged alone: the neighbours
    are pool slices, whose painted tiles the model trained on."""
    def dice(pred):
        return dice_iou(pred, truth[eval_z], classes=CLASSES)["mitochondrion"]["dice"]
    alone = dice(predict_volume(model, image[eval_z], device=device, z_blend={}))
    if not model.meta.get("z_blend"):
        return alone, alone
    return dice(predict_volume(model, image, device=device)[eval_z]), alone


def _positive_scores(model, image, labels, tile, device) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted mitochondrion probability of each tile's unlabeled voxels (where the model fires)."""
    p = predict_probabilities(model, image, device=device)[-1]
    free = labels == 0
    Z, Y, X = image.shape
    ny, nx = -(-Y // tile), -(-X // tile)
    scores = np.full((Z, ny, nx, 1), np.nan, np.float32)
    frac = np.zeros((Z, ny, nx), np.float32)
    for ty in range(ny):
        for tx in range(nx):
            box = (slice(None), slice(ty * tile, (ty + 1) * tile), slice(tx * tile, (tx + 1) * tile))
            f = free[box]
            n = f.sum((1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                scores[:, ty, tx, 0] = (p[box] * f).sum((1, 2)) / n
            frac[:, ty, tx] = 1 - n / f[0].size
    return scores, frac


def _paint(labels, truth, picks) -> np.ndarray:
    out = labels.copy()
    for z, y0, x0, y1, x1 in picks:
        out[z, y0:y1, x0:x1] = truth[z, y0:y1, x0:x1]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="*", default=["cdeep3m_sbem_mito"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--minutes", type=float, default=5.0, help="round-0 budget")
    p.add_argument("--round-minutes", type=float, default=2.0, help="fine-tuning budget per round")
    p.add_argument("--round-steps", type=int, default=None, help="fine-tune exactly this many steps per round")
    p.add_argument("--base", default=None, help="round-0 model file: loaded if present, else trained and saved")
    p.add_argument("--balance", type=float, default=TrainConfig.slice_balance, help="TrainConfig.slice_balance")
    p.add_argument("--random-seeds", type=int, default=1, help="random arms, each with its own draw of tiles")
    p.add_argument("--tta", action="store_true", help="flip disagreement in the uncertainty (4x slower)")
    p.add_argument("--edge", type=int, default=0, help="uncertainty within this many px of a predicted boundary counts 0")
    p.add_argument("--keep-last", action="store_true",
                   help="keep each round's last weights (no gate against the start); validation still calibrates")
    p.add_argument("--rank", choices=["entropy", "positive"], default="entropy",
                   help="suggested tiles by uncertainty, or by mean predicted probability (where the model fires)")
    p.add_argument("--mix", type=float, default=0.0, help="share of the k suggested tiles drawn at random instead")
    p.add_argument("--ema", type=float, default=TrainConfig.ema, help="TrainConfig.ema of round 0 and the fine-tuning rounds (0: off)")
    p.add_argument("--tag", default="", help="added to the result file's name (runs side by side)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    results = []
    for name in args.datasets:
        image = tifffile.imread(DATA / name / "image.tif")
        truth = np.where(tifffile.imread(DATA / name / "mito.tif") > 0, 2, 1).astype(np.uint8)
        Z = truth.shape[0]
        kept, eval_z, pool = split(Z)
        labels0 = np.zeros_like(truth)
        labels0[kept] = truth[kept]
        cfg = TrainConfig(scale=args.scale, slice_balance=args.balance, ema=args.ema)
        if args.base and Path(args.base).exists():
            base_model = load_model(args.base)
        else:
            base_model = train(image, labels0, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed, config=cfg).model
            if args.base:
                save_model(args.base, base_model)
        val_z = list(base_model.meta["val_slices"])
        tune_cfg = dataclasses.replace(cfg, max_steps=args.round_steps, select_best=not args.keep_last)
        tune_minutes = args.round_minutes if args.round_steps is None else 60.0
        d0, alone0 = _score(base_model, image, truth, eval_z, args.device)
        print(f"{name}: round 0 Dice {d0:.3f} (slices alone {alone0:.3f}) labeled {int((labels0 > 0).sum())} voxels", flush=True)
        arms = {}
        names = ["suggested"] + [f"random{i}" if i else "random" for i in range(args.random_seeds)]
        for arm in names:
            rows: list[dict[str, Any]] = [{"round": 0, "dice": d0, "dice_slices_alone": alone0, "labeled_voxels": int((labels0 > 0).sum())}]
            model, labels = base_model, labels0
            for r in range(1, args.rounds + 1):
                t = time.perf_counter()
                ny, nx = -(-truth.shape[1] // args.tile), -(-truth.shape[2] // args.tile)
                free = [(z, ty, tx) for z in pool for ty in range(ny) for tx in range(nx)
                        if not labels[z, ty * args.tile:(ty + 1) * args.tile, tx * args.tile:(tx + 1) * args.tile].any()]
                n_random = args.k if arm != "suggested" else int(round(args.k * args.mix))
                picks = []
                if arm == "suggested" and args.k - n_random > 0:
                    # ranked on the whole volume, as the app ranks it (each slice mixed with its true
                    # neighbours); only pool slices may be picked
                    if args.rank == "positive":
                        scores, frac = _positive_scores(model, image, labels, args.tile, args.device)
                    else:
                        scores, frac = tile_scores(model, image, labels=labels, tile=args.tile, tta=args.tta,
                                                   edge=args.edge, device=args.device)
                    score = scores.mean(-1)
                    score[[z for z in range(Z) if z not in pool]] = np.nan
                    picks = [(s.z, s.y0, s.x0, s.y1, s.x1) for s in rank_tiles(
                        score, k=args.k - n_random, tile=args.tile, shape=image.shape, labeled_fraction=frac,
                        z_spacing=Z_SPACING.get(name, 1.0))]
                taken = {(z, y0 // args.tile, x0 // args.tile) for z, y0, x0, _, _ in picks}
                free = [f for f in free if f not in taken]
                chosen = [free[i] for i in rng.choice(len(free), size=min(n_random, len(free)), replace=False)]
                picks += [(z, ty * args.tile, tx * args.tile, min((ty + 1) * args.tile, truth.shape[1]),
                           min((tx + 1) * args.tile, truth.shape[2])) for z, ty, tx in chosen]
                labels = _paint(labels, truth, picks)
                res = train(image, labels, classes=CLASSES, minutes=tune_minutes, device=args.device, init=model,
                            seed=args.seed + r, config=tune_cfg, val_slices=val_z)
                model = res.model
                d, alone = _score(model, image, truth, eval_z, args.device)
                rows.append({"round": r, "dice": d, "dice_slices_alone": alone, "labeled_voxels": int((labels > 0).sum()), "picks": picks,
                             "steps": res.steps, "val_dice": res.val_dice, "seconds": round(time.perf_counter() - t, 1)})
                print(f"{name}: {arm:9s} round {r} Dice {d:.3f} (slices alone {alone:.3f}) labeled {rows[-1]['labeled_voxels']} voxels", flush=True)
            arms[arm] = rows
        results.append({"dataset": name, "kept": kept, "eval_slices": eval_z, "val_slices": val_z, "pool": pool, "arms": arms})
        print("\n" + f"{'round':>5s} " + " ".join(f"{n:>10s}" for n in names) + f" {'labeled':>10s}")
        for r in range(args.rounds + 1):
            print(f"{r:5d} " + " ".join(f"{arms[n][r]['dice']:10.3f}" for n in names) + f" {arms['suggested'][r]['labeled_voxels']:10d}"
                  + "   slices alone: " + " ".join(f"{arms[n][r]['dice_slices_alone']:.3f}" for n in names))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"loop-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps({"args": vars(args), "threads": torch.get_num_threads(), "results": results}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
