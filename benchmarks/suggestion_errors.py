"""Do suggested tiles hold the model's errors? Tile uncertainty against tile error on real EM.

The loop benchmark asks whether painting suggested tiles teaches more than painting random
ones; this asks the question before it: whether the ranking points at the errors at all. For a
model and a labeled crop it ranks the loop's pool tiles (odd slices not kept for round 0) as
the app does (:func:`segmentation.core.active.tile_scores` on the whole volume, round 0's
slices labeled), predicts the volume, and compares each tile's score with its real voxel
error rate: Spearman correlation, and the error in the ``k`` best-ranked tiles against the
average tile and the ``k`` worst tiles (an oracle).

Usage (from the project root)::

    .venv/bin/python benchmarks/suggestion_errors.py --model benchmarks/results/loop-base-s6.pt
        [--dataset cdeep3m_sbem_mito] [--tile 256] [--k 4] [--threads 2]

Prints the figures; writes benchmarks/results/suggestion-errors-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loop import split  # noqa: E402
from segmentation.core.active import tile_scores  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.modelfile import load_model  # noqa: E402

DATA = Path(os.environ.get("EMPORTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default="cdeep3m_sbem_mito")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    image = tifffile.imread(DATA / args.dataset / "image.tif")
    truth = tifffile.imread(DATA / args.dataset / "mito.tif") > 0
    Z, Y, X = image.shape
    kept, _, pool = split(Z)
    model = load_model(args.model)
    mito = model.classes.values["mitochondrion"]
    labels = np.zeros(image.shape, np.uint8)
    labels[kept] = np.where(truth[kept], mito, model.classes.values["background"])
    scores = tile_scores(model, image, labels=labels, tile=args.tile, tta=False, device=args.device)[0].mean(-1)
    wrong = (predict_volume(model, image, device=args.device) == mito) != truth
    t = args.tile
    tiles = [(z, ty, tx) for z in pool for ty in range(-(-Y // t)) for tx in range(-(-X // t))]
    score = np.array([scores[z, ty, tx] for z, ty, tx in tiles])
    error, foreground = (np.array([a[z, ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].mean() for z, ty, tx in tiles])
                         for a in (wrong, truth))
    ranked, oracle = np.argsort(-score)[: args.k], np.argsort(-error)[: args.k]
    out = {
        "model": args.model, "dataset": args.dataset, "tile": t, "k": args.k, "pool": pool, "tiles": len(tiles),
        "spearman_score_error": float(spearmanr(score, error)[0]),
        "spearman_score_foreground": float(spearmanr(score, foreground)[0]),
        "error_top_k": float(error[ranked].mean()), "error_mean": float(error.mean()),
        "error_oracle_k": float(error[oracle].mean()),
        "foreground_top_k": float(foreground[ranked].mean()), "foreground_mean": float(foreground.mean()),
    }
    print(f"{args.dataset}, {len(tiles)} pool tiles of {t}²: Spearman(score, error) {out['spearman_score_error']:.2f}, "
          f"(score, mitochondria share) {out['spearman_score_foreground']:.2f}")
    print(f"voxel error: {args.k} best-ranked tiles {out['error_top_k']:.3f} "
          f"({out['error_top_k'] / out['error_mean']:.1f}x the average tile {out['error_mean']:.3f}); "
          f"{args.k} worst tiles (oracle) {out['error_oracle_k']:.3f}")
    path = ROOT / "benchmarks" / "results" / f"suggestion-errors-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
