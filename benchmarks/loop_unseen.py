"""The correction loop on a region the labels never came from: suggested tiles against random ones.

A lab applies a model from earlier labels to a new region and corrects it in a few tiles there.
Round 0 is ``benchmarks/unseen.py``'s model: trained through the default path on the data set's
labels outside its unseen region (:func:`benchmarks.unseen.split`), which is the *target* here.
Each round the simulated annotator paints the truth in ``--k`` tiles of the target: the tiles the
app's ranking puts first (uncertainty of the target's unpainted tiles, :func:`~segmentation.core.active.tile_scores`
and :func:`~segmentation.core.active.rank_tiles` on the target's slices) in the suggested arm, a
random draw of the target's unpainted tiles in each random arm. The model is then fine-tuned from
the previous round on old and new labels for exactly ``--round-steps`` steps (by default about
what the app's Retrain takes), keeping the last weights (both arms get the same optimisation
whatever the machine's load), validated and calibrated on round 0's validation slice, which lies
outside the target.

Scores on the target, per arm and round (mitochondria, predicted through the default path):

* ``dice``: on the target voxels that **no arm of the run** painted in any round, the same voxels
  for every arm and round (the headline);
* ``dice_alt``: the same voxels against a second annotator's labels (``mito_alt.tif``), where the
  data set has them (HeLa);
* ``dice_own``: on the target voxels that arm had not painted by then;
* ``corrected``: in the tiles painted that round, the model's false positives and negatives before
  the round against after its fine-tune, and the share of that error gone
  (:func:`~segmentation.core.corrections.corrected_error`).

Usage (from the project root)::

    .venv/bin/python benchmarks/loop_unseen.py --datasets cdeep3m_sbem_mito --minutes 10 --rounds 3 --k 4 --tile 256
        --random-seeds 2 --base benchmarks/results/loop-unseen-base-sbem.pt --threads 2 --seed S
        [--round-steps N] [--lr-factor F] [--hard-weight W]

``--base`` loads round 0 from the file when it exists, else trains it and saves it there (one data
set per run then). Writes benchmarks/results/loop-unseen-<time>.json, which
``benchmarks/loop_summary.py`` averages over seeds like loop.py's.
"""
from __future__ import annotations

import argparse
import dataclasses
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

from benchmarks._training import add_dataset_run_flags, defaults_config  # noqa: E402
from benchmarks.accuracy import CLASSES, DATA, VOXEL_NM  # noqa: E402
from benchmarks.loop import Z_SPACING, _paint  # noqa: E402
from benchmarks.unseen import _dice, split  # noqa: E402
from segmentation.core.active import rank_tiles, tile_scores  # noqa: E402
from segmentation.core.corrections import Box, corrected_error, region_tiles  # noqa: E402
from segmentation.core.defaults import defaults_meta  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.modelfile import TrainedModel, load_model, prediction_tta, save_model  # noqa: E402
from segmentation.core.training import TrainConfig, train  # noqa: E402

MITO = CLASSES["mitochondrion"]


def crop_around(region: np.ndarray, tile: int) -> tuple[slice, slice, slice]:
    """The box predicted each round: the target's slices with one more on each side (the neighbour
    mixing reads them) and its rows and columns grown by a tile for context, aligned to the tile grid
    so the ranking's tiles are the volume's."""
    zs, ys, xs = ([int(i) for i in np.nonzero(region.any(axis=axes))[0]] for axes in ((1, 2), (0, 2), (0, 1)))
    Z, Y, X = region.shape
    y0, x0 = max(ys[0] // tile - 1, 0) * tile, max(xs[0] // tile - 1, 0) * tile
    return (slice(max(zs[0] - 1, 0), min(zs[-1] + 2, Z)), slice(y0, min(ys[-1] + 1 + tile, Y)),
            slice(x0, min(xs[-1] + 1 + tile, X)))


def _suggest(model: TrainedModel, image: np.ndarray, labels: np.ndarray, free: list[Box], *, k: int, tile: int,
             z_spacing: float, device: str) -> list[Box]:
    """The app's ranking of the (cropped) volume, only ``free`` tiles allowed."""
    scores, frac = tile_scores(model, image, labels=labels, tile=tile, tta=False, device=device)
    allowed = np.zeros(scores.shape[:3], bool)
    for z, y0, x0, _, _ in free:
        allowed[z, y0 // tile, x0 // tile] = True
    score = np.where(allowed, scores.mean(-1), np.nan)
    return [(s.z, s.y0, s.x0, s.y1, s.x1) for s in rank_tiles(score, k=k, tile=tile, shape=image.shape,
                                                               labeled_fraction=frac, z_spacing=z_spacing)]


def arm_names(random_seeds: int) -> list[str]:
    """The suggested arm and the random ones (``random``, ``random1``, ...), in their fixed order."""
    return ["suggested"] + [f"random{i}" if i else "random" for i in range(random_seeds)]


def _shift(picks: list[Box], box: tuple[slice, slice, slice]) -> list[Box]:
    """Tiles of the crop ``box`` in the volume's coordinates."""
    z, y, x = (b.start for b in box)
    return [(pz + z, y0 + y, x0 + x, y1 + y, x1 + x) for pz, y0, x0, y1, x1 in picks]


def second_annotator(name: str, box: tuple[slice, slice, slice]) -> np.ndarray | None:
    """The crop of data set ``name``'s second annotation (1 background / 2 mitochondrion), if it has one."""
    path = DATA / name / "mito_alt.tif"
    return np.where(tifffile.imread(path)[box] > 0, MITO, 1).astype(np.uint8) if path.exists() else None


def score_on_union(result: dict[str, Any], preds: dict[str, list[np.ndarray]], truth: np.ndarray,
                   target: np.ndarray, alt: np.ndarray | None = None) -> None:
    """Set every arm's and round's ``dice`` on the target voxels (of the crop) no arm painted, and
    ``dice_alt`` against the second annotation ``alt`` when given."""
    z0, y0, x0 = (c[0] for c in result["crop"])
    scored = target.copy()
    for rows in result["arms"].values():
        for row in rows[1:]:
            for z, a, b, c, d in row["picks"]:
                scored[z - z0, a - y0:c - y0, b - x0:d - x0] = False
    for arm, rows in result["arms"].items():
        for row, pred in zip(rows, preds[arm]):
            row["dice"] = _dice(pred, truth, scored)["dice"]
            if alt is not None:
                row["dice_alt"] = _dice(pred, alt, scored)["dice"]
    if alt is not None:
        result["annotators_dice"] = _dice(truth, alt, scored)["dice"]
    result["scored_voxels"] = int(scored.sum())
    result["scored_mito_voxels"] = int(((truth == MITO) & scored).sum())


def _print(result: dict[str, Any]) -> None:
    arms = result["arms"]
    print(f"\n{result['dataset']}: Dice on the {result['scored_voxels']} target voxels no arm painted "
          f"({result['scored_voxels'] / result['target_voxels']:.0%} of the target)")
    print(f"{'round':>5s} " + " ".join(f"{n:>10s}" for n in arms) + "   corrected error gone: " + " ".join(arms))
    for r in range(len(next(iter(arms.values())))):
        gone = " ".join(f"{rows[r]['corrected']['gone']:.2f}" if r else "-" for rows in arms.values())
        print(f"{r:5d} " + " ".join(f"{rows[r]['dice']:10.3f}" for rows in arms.values()) + "   " + gone)
    if "annotators_dice" in result:
        print(f"against the second annotator (who agrees with the first at {result['annotators_dice']:.3f} there):")
        for r in range(len(next(iter(arms.values())))):
            print(f"{r:5d} " + " ".join(f"{rows[r]['dice_alt']:10.3f}" for rows in arms.values()))


def combine(files: list[str], hela_margin: int) -> int:
    """Merge runs that ran different arms of the same seeds, scoring every arm on the voxels none
    painted (the masks saved beside each run); writes one loop-unseen-*-combined-s<seed>.json per seed.

    A file given as ``NAME=PATH`` has its arms renamed ``NAME`` (``NAME-arm`` when it ran several),
    so that two runs of one arm (two rankings, say) can be scored side by side."""
    names = [f.split("=", 1)[0] if "=" in f else None for f in files]
    paths = [f.split("=", 1)[-1] for f in files]
    runs = [(json.loads(Path(f).read_text()), np.load(Path(f).with_suffix(".npz"))) for f in paths]
    for seed in sorted({run["args"]["seed"] for run, _ in runs}):
        mine = [(run, saved, alias) for (run, saved), alias in zip(runs, names) if run["args"]["seed"] == seed]
        first = mine[0][0]
        results = []
        for i, result in enumerate(first["results"]):
            name = result["dataset"]
            mito = tifffile.imread(DATA / name / "mito.tif") > 0
            truth = np.where(mito, 2, 1).astype(np.uint8)
            box = tuple(slice(a, b) for a, b in result["crop"])
            target = split(name, truth, mito, hela_margin=hela_margin).unseen[box]
            merged = {**result, "arms": {}}
            preds: dict[str, list[np.ndarray]] = {}
            for run, saved, alias in mine:
                ran = run["results"][i]["arms"]
                for arm, rows in ran.items():
                    label = arm if alias is None else alias if len(ran) == 1 else f"{alias}-{arm}"
                    if label in merged["arms"]:
                        raise ValueError(f"seed {seed}: arm {label} ran twice")
                    merged["arms"][label] = rows
                    preds[label] = [np.where(np.unpackbits(saved[f"{name}/{arm}/{r}"], count=target.size).reshape(target.shape)
                                             > 0, MITO, 1).astype(np.uint8) for r in range(len(rows))]
            merged["arms"] = {a: merged["arms"][a] for a in sorted(merged["arms"], key=lambda a: (a != "suggested", a))}
            score_on_union(merged, preds, truth[box], target, second_annotator(name, box))
            _print(merged)
            results.append(merged)
        info = {**first, "args": {**first["args"], "arms": None}, "combined": [f for f, (run, _) in zip(files, runs)
                                                                              if run["args"]["seed"] == seed],
                "load_start": [run["load_start"] for run, _, _ in mine], "load_end": [run["load_end"] for run, _, _ in mine],
                "seconds": [run["seconds"] for run, _, _ in mine], "results": results}
        path = ROOT / "benchmarks" / "results" / f"loop-unseen-{time.strftime('%Y%m%d-%H%M%S')}-combined-s{seed}.json"
        path.write_text(json.dumps(info, indent=1))
        print(f"wrote {path}")
    return 0


ROUND_STEPS = 1300  # the app's Retrain fine-tunes for 5 minutes; docs/ACCURACY.md gives the steps it measured


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_run_flags(p, minutes=10.0, saved_as="loop-unseen")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--base-steps", type=int, default=None,
                   help="round 0 stops after this many steps (besides --minutes and early stopping)")
    p.add_argument("--round-steps", type=int, default=ROUND_STEPS,
                   help="fine-tuning steps per round (default: about what the app's 5-minute Retrain takes on the 2-core CPU)")
    p.add_argument("--random-seeds", type=int, default=2, help="random arms, each with its own draw of tiles")
    p.add_argument("--hard-weight", type=float, default=1.0, help="TrainConfig.hard_weight of the fine-tunes")
    p.add_argument("--lr-factor", type=float, default=TrainConfig.finetune_lr_factor,
                   help="TrainConfig.finetune_lr_factor of the fine-tunes (their rate against a first model's)")
    p.add_argument("--base", default=None, help="round-0 model file: loaded if present, else trained and saved")
    p.add_argument("--arms", nargs="*", choices=arm_names(9), help="run only these arms (default: all); "
                   "--combine scores runs of one seed's arms on the voxels none of them painted")
    p.add_argument("--combine", nargs="*", help="loop-unseen-*.json runs to merge per seed (no training); NAME=PATH renames a run's arm")
    args = p.parse_args()
    if args.base and len(args.datasets) != 1:
        p.error("--base names one model: give one data set")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.combine:
        return combine(args.combine, args.hela_margin)
    load_start, t_start = os.getloadavg(), time.perf_counter()
    results = []
    masks: dict[str, dict[str, np.ndarray]] = {}
    for name in args.datasets:
        image = tifffile.imread(DATA / name / "image.tif")
        mito = tifffile.imread(DATA / name / "mito.tif") > 0
        truth = np.where(mito, 2, 1).astype(np.uint8)
        s = split(name, truth, mito, hela_margin=args.hela_margin)
        defaults, config, overrides = defaults_config(args, VOXEL_NM[name], patch=args.patch)
        if args.base and Path(args.base).exists():
            base = load_model(args.base)
        else:
            steps = {} if args.base_steps is None else {"max_steps": args.base_steps}
            base = train(image, s.sparse, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed,
                         config=dataclasses.replace(config, **steps)).model
            base.meta.update(defaults_meta(defaults, overrides=overrides))
            if args.base:
                save_model(args.base, base)
        tta = prediction_tta(base) if args.tta is None else args.tta
        box = crop_around(s.unseen, args.tile)
        img, tru, target = image[box], truth[box], s.unseen[box]
        val_z = [z - box[0].start for z in base.meta["val_slices"] if box[0].start <= z < box[0].stop]
        if val_z:  # a validation slice inside the crop would be scored: the split never allows that
            raise RuntimeError(f"validation slices {val_z} lie in the target's crop")
        # the last weights, as the app's fine-tune (TrainingDefaults.config(finetune=True))
        tune_cfg = dataclasses.replace(config, max_steps=args.round_steps, select_best=False, hard_weight=args.hard_weight,
                                       finetune_lr_factor=args.lr_factor)

        def predict(model: TrainedModel) -> np.ndarray:
            return predict_volume(model, img, device=args.device, tta=tta)  # noqa: B023

        pred0 = predict(base)
        arms: dict[str, list[dict[str, Any]]] = {}
        preds: dict[str, list[np.ndarray]] = {}
        for arm in args.arms or arm_names(args.random_seeds):
            # each arm its own generator, named by its place among all arms: the same draws in any process
            rng = np.random.default_rng([args.seed, arm_names(args.random_seeds).index(arm)])
            labels = s.sparse.copy()
            model, before = base, pred0
            arms[arm] = [{"round": 0, "labeled_voxels": int((labels > 0).sum()), "load": os.getloadavg()}]
            preds[arm] = [pred0]
            mask = np.zeros(target.shape, bool)
            for r in range(1, args.rounds + 1):
                t = time.perf_counter()
                free = region_tiles(target, args.tile, labels=labels[box])
                if arm == "suggested":
                    picks = _suggest(model, img, labels[box], free, k=args.k, tile=args.tile,
                                     z_spacing=Z_SPACING.get(name, 1.0), device=args.device)
                else:
                    picks = [free[i] for i in sorted(rng.choice(len(free), size=min(args.k, len(free)), replace=False))]
                full = _shift(picks, box)
                labels = _paint(labels, truth, full)
                res = train(image, labels, classes=CLASSES, minutes=60.0, device=args.device, init=model,
                            seed=args.seed + r, config=tune_cfg, val_slices=base.meta["val_slices"])
                model = res.model
                model.meta["tta"] = tta
                after = predict(model)
                fixed = corrected_error(before, after, tru, picks, value=MITO)
                for z, y0, x0, y1, x1 in picks:
                    mask[z, y0:y1, x0:x1] = True
                preds[arm].append(after)
                own = _dice(after, tru, target & ~mask)
                arms[arm].append({"round": r, "dice_own": own["dice"], "labeled_voxels": int((labels > 0).sum()),
                                  "picks": full, "corrected": fixed.to_dict(), "steps": res.steps,
                                  "val_dice": res.val_dice, "seconds": round(time.perf_counter() - t, 1),
                                  "load": os.getloadavg()})
                before = after
                print(f"{name}: {arm:9s} round {r} Dice (own unpainted) {own['dice']:.3f}  corrected-tile error "
                      f"{fixed.fp_before}+{fixed.fn_before} -> {fixed.fp_after}+{fixed.fn_after} (FP+FN), gone {fixed.gone:.2f}, "
                      f"fixed {fixed.fixed:.2f}  {arms[arm][-1]['seconds']:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)
        result = {"dataset": name, "target": s.unseen_what, "crop": [[b.start, b.stop] for b in box],
                  "target_voxels": int(target.sum()), "val_slices": base.meta["val_slices"],
                  "base_steps": base.meta.get("steps"), "tta": tta, "arms": arms}
        score_on_union(result, preds, tru, target, second_annotator(name, box))
        results.append(result)
        masks[name] = {f"{arm}/{r}": np.packbits(p == MITO) for arm, ps in preds.items() for r, p in enumerate(ps)}
        _print(result)
    info = {"args": vars(args), "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "load_start": load_start, "load_end": os.getloadavg(),
            "seconds": round(time.perf_counter() - t_start, 1), "results": results}
    path = out_dir / f"loop-unseen-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(info, indent=1))
    np.savez_compressed(path.with_suffix(".npz"), **{f"{n}/{k}": v for n, m in masks.items() for k, v in m.items()})
    print(f"wrote {path} and the target's predicted masks beside it (.npz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
