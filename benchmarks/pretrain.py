"""Does self-supervised pretraining on the crop's own unlabeled voxels raise Dice on the unseen region?

The protocol of ``benchmarks/unseen.py`` (same splits, same default path): the encoder is first
pretrained on the data set's whole image without any label (:func:`segmentation.core.pretrain.pretrain`,
the settings the training defaults choose for its voxel size), then each seed trains two models
on the same labels for the same minutes, one from scratch (the baseline) and one starting from
that encoder, and both are scored next to the labels and on the unseen region. The arms of a
seed run back to back, their order alternating between seeds, so a change in the machine's load
falls on both; the load average is recorded around each.

Weights learned without labels from the target volume are fair: the pretraining reads the image
only (the unseen region's grey values, never its labels).

Usage (from the project root)::

    .venv/bin/python benchmarks/pretrain.py --pretrain-minutes 4 --minutes 4 --threads 2 --seeds 0 1
    .venv/bin/python benchmarks/pretrain.py --encoder E.pt --steps 100 --minutes 30 --threads 2 --seeds 1  # equal steps

Prints each arm's Dice and the ratio pretrained / baseline, and writes
benchmarks/results/pretrain-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._training import add_training_flags, defaults_config  # noqa: E402
from benchmarks.accuracy import CLASSES, DATA, VOXEL_NM  # noqa: E402
from benchmarks.unseen import _dice, split  # noqa: E402
from segmentation.core.defaults import defaults_meta  # noqa: E402
from segmentation.core.encoder import PretrainedEncoder, load_encoder, save_encoder  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.modelfile import prediction_tta  # noqa: E402
from segmentation.core.pretrain import PretrainConfig, pretrain  # noqa: E402
from segmentation.core.training import TrainConfig, train  # noqa: E402


def _arm(image: np.ndarray, truth: np.ndarray, s: Any, config: TrainConfig, args: argparse.Namespace, seed: int,
         encoder: PretrainedEncoder | None, meta: dict[str, Any]) -> dict[str, Any]:
    """Train one model (from ``encoder`` when given), predict the crop and score both regions."""
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = train(image, s.sparse, classes=CLASSES, minutes=args.minutes, device=args.device, seed=seed, config=config,
                encoder=encoder, progress_bar=True)
    res.model.meta.update(meta)
    t1 = time.perf_counter()
    tta = prediction_tta(res.model)
    pred = predict_volume(res.model, image, device=args.device, tta=tta, progress_bar=True)
    near, unseen = _dice(pred, truth, s.near), _dice(pred, truth, s.unseen)
    return {"arm": "pretrained" if encoder is not None else "baseline", "seed": seed, "near": near, "unseen": unseen,
            "steps": res.steps, "stopped": res.stopped, "val_dice": res.val_dice, "train_s": round(t1 - t0, 1),
            "predict_s": round(time.perf_counter() - t1, 1), "thresholds": res.model.meta.get("thresholds"),
            "load_before": load_before, "load_after": os.getloadavg()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cdeep3m_sbem_mito", choices=sorted(VOXEL_NM))
    p.add_argument("--minutes", type=float, default=4.0, help="training budget of each arm")
    p.add_argument("--pretrain-minutes", type=float, default=4.0)
    p.add_argument("--objective", choices=["masked", "denoise"], default="masked")
    p.add_argument("--mask-ratio", type=float, default=PretrainConfig.mask_ratio)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, help="train each arm exactly this many steps (minutes then only cap it): "
                   "on a loaded machine equal minutes give the arms unequal steps")
    p.add_argument("--encoder", type=Path, help="an encoder file to use instead of pretraining")
    p.add_argument("--save-encoder", type=Path, help="keep the pretrained encoder here")
    p.add_argument("--hela-margin", type=int, default=100)
    add_training_flags(p, scale=None, in_slices=None)
    args = p.parse_args()
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = args.dataset
    image = tifffile.imread(DATA / name / "image.tif")
    mito = tifffile.imread(DATA / name / "mito.tif") > 0
    truth = np.where(mito, 2, 1).astype(np.uint8)
    s = split(name, truth, mito, hela_margin=args.hela_margin)
    defaults, config, overrides = defaults_config(args, VOXEL_NM[name], max_steps=args.steps)
    meta = defaults_meta(defaults, overrides=overrides)

    load_before = os.getloadavg()
    if args.encoder is not None:
        encoder = load_encoder(args.encoder)
    else:
        encoder = pretrain([image], names=[name], minutes=args.pretrain_minutes, device=args.device, seed=args.seeds[0],
                           config=PretrainConfig.like(config, objective=args.objective, mask_ratio=args.mask_ratio,
                                                      max_steps=None))
    if args.save_encoder is not None:
        save_encoder(args.save_encoder, encoder)
    pre = {k: v for k, v in encoder.meta.items() if k != "sources"}
    pre.update(load_before=load_before, load_after=os.getloadavg())
    print(f"pretrained {encoder.meta['steps']} steps ({args.objective}) loss {encoder.meta['loss_first']:.4f} -> "
          f"{encoder.meta['loss_last']:.4f}  load {load_before[0]:.1f} -> {pre['load_after'][0]:.1f}", flush=True)
    rows = []
    for i, seed in enumerate(args.seeds):
        order = [None, encoder] if i % 2 == 0 else [encoder, None]
        for enc in order:
            row = _arm(image, truth, s, config, args, seed, enc, meta)
            rows.append(row)
            print(f"seed {seed} {row['arm']:10s} near {row['near']['dice']:.3f} unseen {row['unseen']['dice']:.3f}  "
                  f"steps {row['steps']} ({row['stopped']})  load {row['load_before'][0]:.1f} -> {row['load_after'][0]:.1f}",
                  flush=True)

    def mean(arm: str, where: str) -> float:
        return float(np.mean([r[where]["dice"] for r in rows if r["arm"] == arm]))

    ratio = {where: mean("pretrained", where) / mean("baseline", where) for where in ("near", "unseen")}
    print()
    for where in ("near", "unseen"):
        print(f"{where:6s} baseline {mean('baseline', where):.3f}  pretrained {mean('pretrained', where):.3f}  "
              f"ratio {ratio[where]:.3f}")
    info = {
        "dataset": name, "minutes": args.minutes, "pretrain": pre, "device": args.device,
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "split": {"kind": s.kind, "near": s.near_what, "unseen": s.unseen_what},
        "defaults": defaults.to_dict(), "overrides": overrides, "args": vars(args), "rows": rows, "ratio": ratio,
        "mean": {arm: {w: mean(arm, w) for w in ("near", "unseen")} for arm in ("baseline", "pretrained")},
    }
    path = out_dir / f"pretrain-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(info, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
