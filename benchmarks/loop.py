"""The correction loop, simulated: do model-suggested regions beat random ones?

For each dataset (default: the SBEM crop), round 0 trains on about one slice in ten
(z = 5, 15, ...). The other slices are split once: even slices are the evaluation set
(never labeled, never suggested), odd ones the pool an annotator may paint. Each further
round the simulated annotator paints the truth inside ``k`` tiles of the pool, the model
is fine-tuned from the previous round (``init``) for ``--round-minutes``, and
mitochondria Dice is scored on the evaluation slices. Two arms run in the same process
from the same round-0 model: tiles chosen by :func:`segmentation.core.active.suggest_regions`'
ranking, and tiles chosen at random among unlabeled pool tiles (the baseline).

Usage (from the project root)::

    .venv/bin/python benchmarks/loop.py [--datasets cdeep3m_sbem_mito] [--rounds 3] [--k 4] [--tile 256]
        [--minutes 5] [--round-minutes 2] [--tta] [--threads 1]

Prints Dice per round for both arms with the labeled voxel counts; writes
benchmarks/results/loop-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.active import rank_tiles, tile_scores  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.metrics import dice_iou  # noqa: E402
from segmentation.core.training import TrainConfig, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CLASSES = {"background": 1, "mitochondrion": 2}


def _score(model, image, truth, eval_z, device) -> float:
    pred = predict_volume(model, image[eval_z], device=device)
    return dice_iou(pred, truth[eval_z], classes=CLASSES)["mitochondrion"]["dice"]


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
    p.add_argument("--tta", action="store_true", help="flip disagreement in the uncertainty (4x slower)")
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
        kept = list(range(5, Z, 10))
        eval_z = [z for z in range(0, Z, 2) if z not in kept]
        pool = [z for z in range(1, Z, 2) if z not in kept]
        labels0 = np.zeros_like(truth)
        labels0[kept] = truth[kept]
        cfg = TrainConfig(scale=args.scale)
        base = train(image, labels0, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed, config=cfg)
        d0 = _score(base.model, image, truth, eval_z, args.device)
        print(f"{name}: round 0 Dice {d0:.3f} labeled {int((labels0 > 0).sum())} voxels", flush=True)
        arms = {}
        for arm in ("suggested", "random"):
            model, labels, rows = base.model, labels0, [{"round": 0, "dice": d0, "labeled_voxels": int((labels0 > 0).sum())}]
            for r in range(1, args.rounds + 1):
                t = time.perf_counter()
                ny, nx = -(-truth.shape[1] // args.tile), -(-truth.shape[2] // args.tile)
                if arm == "suggested":
                    sub = image[pool]
                    scores, frac = tile_scores(model, sub, labels=labels[pool], tile=args.tile, tta=args.tta, device=args.device)
                    picks_s = rank_tiles(scores.mean(-1), k=args.k, tile=args.tile, shape=sub.shape, labeled_fraction=frac)
                    picks = [(pool[s.z], s.y0, s.x0, s.y1, s.x1) for s in picks_s]
                else:
                    free = [(z, ty, tx) for z in pool for ty in range(ny) for tx in range(nx)
                            if not labels[z, ty * args.tile:(ty + 1) * args.tile, tx * args.tile:(tx + 1) * args.tile].any()]
                    chosen = [free[i] for i in rng.choice(len(free), size=min(args.k, len(free)), replace=False)]
                    picks = [(z, ty * args.tile, tx * args.tile, min((ty + 1) * args.tile, truth.shape[1]),
                              min((tx + 1) * args.tile, truth.shape[2])) for z, ty, tx in chosen]
                labels = _paint(labels, truth, picks)
                res = train(image, labels, classes=CLASSES, minutes=args.round_minutes, device=args.device,
                            init=model, seed=args.seed + r, config=cfg)
                model = res.model
                d = _score(model, image, truth, eval_z, args.device)
                rows.append({"round": r, "dice": d, "labeled_voxels": int((labels > 0).sum()), "picks": picks,
                             "seconds": round(time.perf_counter() - t, 1)})
                print(f"{name}: {arm:9s} round {r} Dice {d:.3f} labeled {rows[-1]['labeled_voxels']} voxels", flush=True)
            arms[arm] = rows
        results.append({"dataset": name, "kept": kept, "eval_slices": eval_z, "pool": pool, "arms": arms})
        print(f"\n{'round':>5s} {'suggested':>10s} {'random':>10s} {'labeled (sugg.)':>16s}")
        for a, b in zip(arms["suggested"], arms["random"]):
            print(f"{a['round']:5d} {a['dice']:10.3f} {b['dice']:10.3f} {a['labeled_voxels']:16d}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"loop-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "threads": torch.get_num_threads(), "results": results}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
