"""What dropping the objects smaller than those painted whole does to Dice (issue #23 item 3).

Since 2026-12-03 a model records the 5th percentile of the 2D sizes of the objects painted whole
(``meta["object_floor_px"]``, :func:`~segmentation.core.training.smallest_objects`) and its
predictions drop smaller objects (:meth:`~segmentation.core.inference.PostProcess.taught`). This
scores that clean-up on predictions made without it, so both sides come from one model:

* ``--loops RUN.json ...``: the masks ``loop_unseen.py`` saved beside its runs. Each round's floor
  comes from the labels that round's model was trained on (the data set's labels outside the
  target plus the tiles painted so far, without the validation slices), and Dice is taken on the
  target voxels the arm never painted (``dice_own``).
* ``--phantom MODEL.pt ...``: models saved by ``phantom_accuracy.py --save-model``, predicted with
  and without the floor, nested Dice on the slices never labeled.

Usage (from the project root)::

    .venv/bin/python benchmarks/object_floor.py --loops benchmarks/results/loop-unseen-*-s1300lr0.25-*.json
    .venv/bin/python benchmarks/object_floor.py --phantom MODEL.pt --seed 0 [--shape 48 256 256] [--every 6] [--tta]

Prints one line per round (or class) and writes benchmarks/results/object-floor-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import CLASSES, DATA  # noqa: E402
from benchmarks.loop import _paint  # noqa: E402
from benchmarks.phantom_accuracy import CLASSES as PHANTOM_CLASSES  # noqa: E402
from benchmarks.phantom_accuracy import label_volume, nested_dice  # noqa: E402
from benchmarks.unseen import _dice, split  # noqa: E402
from segmentation.core.classes import ClassSpec, default_parents  # noqa: E402
from segmentation.core.inference import PostProcess, postprocess_masks, predict_volume  # noqa: E402
from segmentation.core.modelfile import load_model  # noqa: E402
from segmentation.core.sampling import LabeledSlices  # noqa: E402
from segmentation.core.training import smallest_objects  # noqa: E402

MITO = CLASSES["mitochondrion"]
BASES = {"cdeep3m_sbem_mito": "sbem", "drosophila_vnc_sstem": "sstem", "hela_sbfsem": "hela"}


def floor_of(labels: np.ndarray, spec: ClassSpec, scale: int, skip: Collection[int] = ()) -> dict[str, int]:
    """``meta["object_floor_px"]`` as training records it for these labels (slices ``skip`` held out)."""
    zs = [z for z in range(labels.shape[0]) if z not in skip and labels[z].any()]
    c = scale // 2
    planes = [labels[z][c::scale, c::scale] for z in zs]
    data = LabeledSlices([np.zeros((1, 1, 1), np.float32)] * len(zs), planes, np.zeros(len(zs), bool), zs)
    return smallest_objects(data, spec, scale, whole=True)


def drop_below(mask: np.ndarray, spec: ClassSpec, px: int) -> np.ndarray:
    """``mask`` (one head, Z x Y x X) after the prediction's size clean-up at ``px``, holes left as they are."""
    post = PostProcess(fill_holes=frozenset(), min_size={spec.heads[0]: px})
    return postprocess_masks(mask[None], spec, post)[0]


def loops(files: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in files:
        run, saved = json.loads(Path(f).read_text()), np.load(Path(f).with_suffix(".npz"))
        for res in run["results"]:
            name = res["dataset"]
            base = load_model(ROOT / "benchmarks" / "results" / f"loop-unseen-base-{BASES[name]}.pt")
            mito = tifffile.imread(DATA / name / "mito.tif") > 0
            truth = np.where(mito, MITO, 1).astype(np.uint8)
            s = split(name, truth, mito, hela_margin=run["args"]["hela_margin"])
            box = tuple(slice(a, b) for a, b in res["crop"])
            target, tru = s.unseen[box], truth[box]
            z0, y0, x0 = (c[0] for c in res["crop"])
            for arm, arm_rows in res["arms"].items():
                labels, painted = s.sparse, np.zeros(target.shape, bool)
                for r, row in enumerate(arm_rows):
                    if r:
                        labels = _paint(labels, truth, row["picks"])
                    for z, a, b, c, d in row.get("picks", []):
                        painted[z - z0, a - y0:c - y0, b - x0:d - x0] = True
                    pred = np.unpackbits(saved[f"{name}/{arm}/{r}"], count=target.size).reshape(target.shape) > 0
                    px = floor_of(labels, base.classes, base.scale, set(base.meta["val_slices"])).get("mitochondrion", 0)
                    scored = target & ~painted
                    before = _dice(np.where(pred, MITO, 1), tru, scored)["dice"]
                    after = _dice(np.where(drop_below(pred, base.classes, px), MITO, 1), tru, scored)["dice"]
                    rows.append({"run": Path(f).name, "dataset": name, "arm": arm, "round": r, "floor_px": px,
                                 "dice_own": before, "dice_own_floor": after})
                    print(f"{Path(f).name[12:60]:48s} {name[:8]} {arm:9s} r{r} floor {px:4d} px  "
                          f"{before:.4f} -> {after:.4f} ({after - before:+.4f})", flush=True)
    for name in sorted({r["dataset"] for r in rows}):
        gain = np.array([r["dice_own_floor"] - r["dice_own"] for r in rows if r["dataset"] == name])
        last = [r["dice_own_floor"] - r["dice_own"] for r in rows if r["dataset"] == name and r["round"] == 3]
        print(f"{name}: {len(gain)} predictions, gain mean {gain.mean():+.4f}, min {gain.min():+.4f}, "
              f"max {gain.max():+.4f}" + (f", after round 3 {np.mean(last):+.4f}" if last else ""))
    return rows


def phantom(files: list[str], seed: int, shape: tuple[int, int, int], every: int, tta: bool) -> list[dict[str, Any]]:
    parents = default_parents([n for n in PHANTOM_CLASSES if n != "background"])
    image, truth = label_volume(seed, shape)
    kept = list(range(every // 2, shape[0], every))
    sparse = np.zeros_like(truth)
    sparse[kept] = truth[kept]
    unseen = [z for z in range(shape[0]) if z not in kept]
    rows = []
    for f in files:
        model = load_model(f)
        model.meta.pop("object_floor_px", None)
        before = nested_dice(predict_volume(model, image, device="cpu", tta=tta)[unseen], truth[unseen], parents)
        model.meta["object_floor_px"] = floor_of(sparse, model.classes, model.scale, set(model.meta["val_slices"]))
        after = nested_dice(predict_volume(model, image, device="cpu", tta=tta)[unseen], truth[unseen], parents)
        rows.append({"model": f, "floor_px": model.meta["object_floor_px"], "dice": before, "dice_floor": after})
        print(f"{f}: floor {model.meta['object_floor_px']}")
        for name in before:
            print(f"  {name:14s} {before[name]:.4f} -> {after[name]:.4f} ({after[name] - before[name]:+.4f})")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loops", nargs="*", default=[], help="loop_unseen.py result files (their .npz beside them)")
    p.add_argument("--phantom", nargs="*", default=[], help="phantom_accuracy.py model files")
    p.add_argument("--seed", type=int, default=0, help="the phantom's seed (as the model was trained)")
    p.add_argument("--shape", type=int, nargs=3, default=[48, 256, 256])
    p.add_argument("--every", type=int, default=6)
    p.add_argument("--tta", action="store_true")
    args = p.parse_args()
    info = {"args": vars(args), "loops": loops(args.loops),
            "phantom": phantom(args.phantom, args.seed, tuple(args.shape), args.every, args.tta)}
    out = ROOT / "benchmarks" / "results" / f"object-floor-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
