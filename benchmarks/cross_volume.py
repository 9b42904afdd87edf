"""Cross-volume: a model from one data set's labels, corrected in a few tiles of another data set's unseen region.

A lab with a model from an earlier volume applies it to a new one and paints the truth in a few
tiles there. For each pair ``SOURCE:TARGET`` of data sets in ../shared/data:

* **source model**: trained through the default path on the source's labels of its own unseen
  protocol (:func:`benchmarks.unseen.split`, the labels ``benchmarks/loop_unseen.py``'s round 0
  trains on), stopped at ``--base-steps``; kept at its own ``scale`` on the target (the network
  then sees the target at the target's pixel size times that scale, written to the JSON);
* **target**: the target's unseen region of the same split (SBEM z 15-19, ssTEM the bottom-right
  quadrant, HeLa pages 1-2 in the cell's box), cropped as :func:`benchmarks.loop_unseen.crop_around`;
* **tiles**: ``--k`` random tiles of ``--tile``² of the target per round (:func:`draw_tiles`, a
  generator seeded by the seed and the target), the same tiles for every arm.

Arms, each fine-tuned for exactly ``--round-steps`` steps per round on everything it has been
shown, keeping the last weights (the app's fine-tune, ``TrainingDefaults.config(finetune=True)``):

* ``cross``: from the source model, on the painted target tiles only (a new volume's tiles,
  not the old labels); nothing is held out, so it keeps the source's calibration. Round 0 is
  the source model applied as the app applies it (its own intensity normalisation);
* ``scratch``: a new network trained on the same tiles (round 1 from random weights, then
  continued like ``cross``);
* ``within`` (unless ``--no-within``): the target's own model of the same protocol, fine-tuned
  on its labels plus the same tiles and validated on its own validation slice, as loop_unseen.py
  does: what the target's own labels would have given.

``dice``: mitochondria Dice on the target voxels no tile of any round covers (:func:`scored_mask`),
the same voxels for every arm and round. Also written: round 0 on the whole target (unseen.py's
figure) and the source model with the target's own normalisation (``zero_shot_target_norm``).

Usage (from the project root)::

    nice -n 5 .venv/bin/python benchmarks/cross_volume.py --pairs cdeep3m_sbem_mito:drosophila_vnc_sstem
        --base cdeep3m_sbem_mito=benchmarks/results/loop-unseen-base-sbem.pt
        drosophila_vnc_sstem=benchmarks/results/loop-unseen-base-sstem.pt --base-steps 800 --threads 1 --seeds 0 1

``--base NAME=PATH`` loads a data set's model from PATH when it exists, else trains it and saves
it there. Prints a table and writes benchmarks/results/cross-volume-<time>.json.
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

from benchmarks._training import DATASETS, add_training_flags, defaults_config  # noqa: E402
from benchmarks.accuracy import CLASSES, DATA, VOXEL_NM  # noqa: E402
from benchmarks.loop import _paint  # noqa: E402
from benchmarks.loop_unseen import ROUND_STEPS, _shift, crop_around  # noqa: E402
from benchmarks.unseen import Split, _dice, split  # noqa: E402
from segmentation.core.corrections import Box, region_tiles  # noqa: E402
from segmentation.core.defaults import defaults_meta  # noqa: E402
from segmentation.core.inference import predict_volume  # noqa: E402
from segmentation.core.modelfile import Normalization, TrainedModel, load_model, save_model  # noqa: E402
from segmentation.core.training import TrainConfig, train  # noqa: E402

ARMS = ("cross", "scratch", "within")
#: Pairs measured by default: the two sets with the closest pixel sizes, both ways.
PAIRS = ["cdeep3m_sbem_mito:drosophila_vnc_sstem", "drosophila_vnc_sstem:cdeep3m_sbem_mito"]


def draw_tiles(free: list[Box], *, k: int, rounds: int, rng: np.random.Generator) -> list[list[Box]]:
    """``k`` tiles per round for ``rounds`` rounds, drawn without replacement from ``free``."""
    if k * rounds > len(free):
        raise ValueError(f"{rounds} rounds of {k} tiles need {k * rounds} tiles; the target holds {len(free)}")
    order = rng.permutation(len(free))[:k * rounds]
    return [sorted(free[int(i)] for i in order[r * k:(r + 1) * k]) for r in range(rounds)]


def scored_mask(target: np.ndarray, tiles: list[list[Box]]) -> np.ndarray:
    """The target voxels (of the crop) that no tile of any round covers: every arm is scored there."""
    scored = target.copy()
    for picks in tiles:
        for z, y0, x0, y1, x1 in picks:
            scored[z, y0:y1, x0:x1] = False
    return scored


def parse_bases(items: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` items as a mapping, each name a known data set."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or name not in VOXEL_NM:
            raise ValueError(f"--base takes NAME=PATH with NAME one of {', '.join(VOXEL_NM)}, got {item!r}")
        out[name] = Path(path)
    return out


def _load(name: str, hela_margin: int) -> tuple[np.ndarray, np.ndarray, Split]:
    image = tifffile.imread(DATA / name / "image.tif")
    mito = tifffile.imread(DATA / name / "mito.tif") > 0
    truth = np.where(mito, 2, 1).astype(np.uint8)
    return image, truth, split(name, truth, mito, hela_margin=hela_margin)


def base_model(name: str, args: argparse.Namespace, bases: dict[str, Path]) -> TrainedModel:
    """Data set ``name``'s model of its unseen protocol: loaded from ``--base`` when the file exists,
    else trained through the default path (at most ``--base-steps`` steps) and saved there if named."""
    path = bases.get(name)
    if path is not None and path.exists():
        return load_model(path)
    image, _, s = _load(name, args.hela_margin)
    defaults, config, overrides = defaults_config(args, VOXEL_NM[name], patch=args.patch)
    print(f"training {name}'s model ({args.base_steps} steps at most)", flush=True)
    model = train(image, s.sparse, classes=CLASSES, minutes=args.minutes, device=args.device, seed=args.seed,
                  config=dataclasses.replace(config, max_steps=args.base_steps)).model
    model.meta.update(defaults_meta(defaults, overrides=overrides))
    if path is not None:
        save_model(path, model)
    return model


def run_pair(source_name: str, target_name: str, seed: int, args: argparse.Namespace,
             models: dict[str, TrainedModel]) -> dict[str, Any]:
    """Every arm's Dice per round on one target, for one seed's tiles."""
    image, truth, s = _load(target_name, args.hela_margin)
    source = models[source_name]
    box = crop_around(s.unseen, args.tile)
    img, tru, target = image[box], truth[box], s.unseen[box]
    rng = np.random.default_rng([seed, DATASETS.index(target_name)])
    tiles = draw_tiles(region_tiles(target, args.tile, labels=s.sparse[box]), k=args.k, rounds=args.rounds, rng=rng)
    scored = scored_mask(target, tiles)
    defaults, config, _ = defaults_config(args, VOXEL_NM[target_name], patch=args.patch)
    # the app's fine-tune (last weights), capped in steps so every arm and round gets the same optimisation
    tune_cfg: TrainConfig = dataclasses.replace(config, select_best=defaults.config(finetune=True).select_best,
                                                max_steps=args.round_steps)
    tta = defaults.tta if args.tta is None else args.tta

    def predict(model: TrainedModel) -> np.ndarray:
        return predict_volume(model, img, device=args.device, tta=tta)

    pred0 = predict(source)
    renorm = dataclasses.replace(source, normalization=Normalization.measure(image, seed=seed))
    result: dict[str, Any] = {
        "source": source_name, "target": target_name, "seed": seed, "target_what": s.unseen_what,
        "crop": [[b.start, b.stop] for b in box], "target_voxels": int(target.sum()),
        "scored_voxels": int(scored.sum()), "scored_mito_voxels": int(((tru == 2) & scored).sum()),
        "tiles": [_shift(p, box) for p in tiles], "tta": tta, "scale": source.scale,
        "network_pixel_nm": {"source_trained": VOXEL_NM[source_name][1] * source.scale,
                             "target": VOXEL_NM[target_name][1] * source.scale},
        "source_steps": source.meta.get("steps"),
        "zero_shot_whole_target": _dice(pred0, tru, target)["dice"],
        "zero_shot_target_norm": _dice(predict(renorm), tru, scored)["dice"],
        "arms": {},
    }
    starts: dict[str, tuple[TrainedModel | None, np.ndarray, list[int]]] = {
        "cross": (source, np.zeros_like(truth), []), "scratch": (None, np.zeros_like(truth), [])}
    if not args.no_within:
        own = models[target_name]
        val_z = [int(z) for z in own.meta.get("val_slices") or []]
        if any(box[0].start <= z < box[0].stop for z in val_z):  # it would be scored: the split never allows that
            raise RuntimeError(f"{target_name}'s validation slices {val_z} lie in the target's crop")
        starts["within"] = (own, s.sparse, val_z)
        result["within_steps"] = own.meta.get("steps")
    for arm, (model, labels, val_z) in starts.items():
        rows: list[dict[str, Any]] = []
        if model is not None:
            pred = pred0 if arm == "cross" else predict(model)
            rows.append({"round": 0, "dice": _dice(pred, tru, scored)["dice"],
                         "dice_whole_target": _dice(pred, tru, target)["dice"], "load": os.getloadavg()})
        else:
            rows.append({"round": 0, "dice": None})
        for r, picks in enumerate(tiles, start=1):
            t = time.perf_counter()
            labels = _paint(labels, truth, _shift(picks, box))
            res = train(image, labels, classes=CLASSES, minutes=60.0, device=args.device, init=model, seed=seed + r,
                        config=tune_cfg, val_slices=val_z)
            model = res.model
            d = _dice(predict(model), tru, scored)["dice"]
            rows.append({"round": r, "dice": d, "steps": res.steps, "labeled_voxels": int((labels > 0).sum()),
                         "seconds": round(time.perf_counter() - t, 1), "load": os.getloadavg()})
            print(f"{source_name} -> {target_name} seed {seed}: {arm:7s} round {r} Dice {d:.3f}  steps {res.steps}  "
                  f"{rows[-1]['seconds']:.0f}s  load {os.getloadavg()[0]:.1f}", flush=True)
        result["arms"][arm] = rows
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(results: list[dict[str, Any]]) -> None:
    """One line per pair and seed: cross rounds 0-3, scratch rounds 1-3, within rounds 0-3."""
    print(f"\n{'source -> target':45s} {'seed':>4s}  {'cross r0..r3':27s}  {'scratch r1..r3':20s}  {'within r0..r3':27s}  scored")
    for res in results:
        cells = [" ".join(_fmt(row["dice"]) for row in res["arms"].get(arm, [])[0 if arm != "scratch" else 1:])
                 for arm in ARMS]
        print(f"{res['source'] + ' -> ' + res['target']:45s} {res['seed']:4d}  {cells[0]:27s}  {cells[1]:20s}  "
              f"{cells[2]:27s}  {res['scored_voxels']} ({res['scored_voxels'] / res['target_voxels']:.0%})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", nargs="*", default=PAIRS, help="SOURCE:TARGET data set names")
    p.add_argument("--seeds", type=int, nargs="*", default=[0], help="tile draws and fine-tune seeds")
    p.add_argument("--seed", type=int, default=0, help="seed of a base model trained here")
    p.add_argument("--minutes", type=float, default=30.0, help="time limit of a base model trained here")
    p.add_argument("--base-steps", type=int, default=800, help="a base model trained here stops after this many steps")
    p.add_argument("--base", nargs="*", default=[], help="NAME=PATH: a data set's model, loaded if present, else trained and saved")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--round-steps", type=int, default=ROUND_STEPS,
                   help="fine-tuning steps per round (default: loop_unseen.py's, three fifths of the app's 5 minutes)")
    p.add_argument("--no-within", action="store_true", help="skip the target's own model")
    add_training_flags(p, scale=None, in_slices=None)
    p.add_argument("--patch", type=int, help="patch side in network pixels (default: the defaults')")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip TTA at prediction (default: the target's defaults')")
    p.add_argument("--hela-margin", type=int, default=100)
    args = p.parse_args()
    try:
        bases = parse_bases(args.base)
        pairs = [tuple(pair.split(":")) for pair in args.pairs]
        if any(len(pair) != 2 or not set(pair) <= set(VOXEL_NM) or pair[0] == pair[1] for pair in pairs):
            raise ValueError(f"--pairs takes SOURCE:TARGET with two different names of {', '.join(VOXEL_NM)}")
    except ValueError as e:
        p.error(str(e))
    load_start, t_start = os.getloadavg(), time.perf_counter()
    needed = {src for src, _ in pairs} | (set() if args.no_within else {tgt for _, tgt in pairs})
    models = {name: base_model(name, args, bases) for name in sorted(needed)}
    results = [run_pair(src, tgt, seed, args, models) for src, tgt in pairs for seed in args.seeds]
    print_table(results)
    info = {"args": vars(args), "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "load_start": load_start, "load_end": os.getloadavg(),
            "seconds": round(time.perf_counter() - t_start, 1),
            "bases": {name: {"path": str(bases.get(name)), "steps": m.meta.get("steps"), "val_slices": m.meta.get("val_slices"),
                             "train_slices": m.meta.get("train_slices")} for name, m in models.items()},
            "results": results}
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cross-volume-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(info, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
