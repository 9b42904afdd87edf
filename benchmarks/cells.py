"""Per-cell Dice of the three cell methods (interior alone, flow alone, fusion), like Fig 2F.

Two parts:

* ``phantom``: the synthetic phantom (48 x 192 x 192 by default, several seeds) with
  cell instances given on every 20th slice (0, 20, 40); the interior mask is the
  phantom's truth interior. Every cell is scored on every slice (key slices
  included, as the paper scores whole cells). Also checks that every protrusion tube
  ends up in its own cell. ``--interior-noise`` replaces the perfect interior by a
  blurred, noisy one, a stand-in for a predicted mask; it erases one-voxel
  protrusions, so ``--surface-errors`` instead flips voxels on either side of every
  surface in smooth patches, which keeps thin protrusions but cuts them into pieces.
  ``--protrusion-radius 0.5`` draws the tubes one voxel wide.
* ``real``: drosophila_vnc_sstem (ssTEM, 10 x 1024 x 1024, 50 nm sections). Its
  ``cells_2d.tif`` holds per-slice 2D instances that are NOT linked across z, so no 3D
  truth exists. The honest test is the neighbour one: the instances of slice z are
  the key, carried to slice z+1 (a two-slice volume), and scored on slice z+1 against
  that slice's own instances, matched by overlap (ids need not agree), for z = 0..8.
  The interior mask is the labels' cytoplasm + mitochondria (the mask the 2D
  instances were derived from), i.e. a perfect interior; "interior" is the 3D
  connected components of that mask over the whole 10-slice stack, scored per slice.

Usage (from the project root)::

    .venv/bin/python benchmarks/cells.py [--part phantom|real|both] [--seeds 0 1 2] [--flow dis] [--interior-noise 0.15]
        [--surface-errors 0.1] [--protrusion-radius 0.5]

Prints tables and writes benchmarks/results/cells-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.cells import segment_cells  # noqa: E402
from segmentation.core.metrics import instance_dice  # noqa: E402
from segmentation.core.phantom import key_slices, make_phantom  # noqa: E402

METHODS = ("interior", "flow", "fusion")
REAL = ROOT.parent / "shared" / "data" / "drosophila_vnc_sstem"


def degrade(interior: np.ndarray, amount: float, seed: int) -> np.ndarray:
    """A stand-in for a predicted interior mask: blurred truth plus smooth noise, cut at 0.5.

    ``amount`` is the noise strength relative to the blurred mask's 0..1 range; 0.15 moves
    about 1% of voxels, mostly at cell borders and thin protrusions.
    """
    if amount <= 0:
        return interior
    rng = np.random.default_rng(1000 + seed)
    noise = ndi.gaussian_filter(rng.normal(0.0, 1.0, interior.shape), (1.0, 3.0, 3.0))
    noise /= noise.std()
    return ndi.gaussian_filter(interior.astype(np.float32), 1.0) + amount * noise > 0.5


def surface_errors(interior: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stand-in for a predicted interior whose errors lie on surfaces: one-voxel flips in smooth patches.

    About ``fraction`` of the voxels just inside every surface drop out and as many just
    outside join, where a smooth noise field is high (low). Unlike :func:`degrade` it
    keeps a one-voxel protrusion, but with holes that cut it into pieces.
    """
    if fraction <= 0:
        return interior
    from scipy.stats import norm

    rng = np.random.default_rng(2000 + seed)
    noise = ndi.gaussian_filter(rng.normal(0.0, 1.0, interior.shape), (1.0, 3.0, 3.0))
    noise /= noise.std()
    cut = float(norm.ppf(1.0 - fraction))
    out = interior.copy()
    out[interior & ~ndi.binary_erosion(interior) & (noise > cut)] = False
    out[~interior & ndi.binary_dilation(interior) & (noise < -cut)] = True
    return out


def phantom_part(
    seeds: list[int], shape: tuple[int, int, int], every: int, flow: str, noise: float, radius: float, surface: float
) -> dict:
    runs = []
    for seed in seeds:
        ph = make_phantom(shape, seed=seed, protrusion_radius=radius)
        keys = key_slices(ph.cells, every=every)
        interior = surface_errors(degrade(ph.interior, noise, seed), surface, seed)
        scores, seconds, protrusions = {}, {}, {}
        for m in METHODS:
            t = time.perf_counter()
            out = segment_cells(ph.image, interior, keys, method=m, flow=flow).cells
            seconds[m] = round(time.perf_counter() - t, 2)
            scores[m] = instance_dice(out, ph.cells)
            protrusions[m] = [
                round(float(np.mean(out[ph.protrusion_ids == i] == p.cell_id)), 3)
                for i, p in enumerate(ph.protrusions, start=1)
            ]
        cells = sorted(scores["fusion"]["cells"])
        wins = sum(
            scores["fusion"]["cells"][c] > max(scores["flow"]["cells"][c], scores["interior"]["cells"][c]) for c in cells
        )
        runs.append(
            {
                "seed": seed,
                "mean": {m: round(scores[m]["mean"], 4) for m in METHODS},
                "per_cell": {m: {int(c): round(scores[m]["cells"][c], 4) for c in cells} for m in METHODS},
                "fusion_beats_both": f"{wins}/{len(cells)}",
                "protrusion_fraction_in_right_cell": protrusions,
                "seconds": seconds,
            }
        )
        changed = float(np.mean(interior != ph.interior))
        tubes_kept = float(np.mean(interior[ph.protrusion_ids > 0]))
        runs[-1]["interior_voxels_changed"] = round(changed, 4)
        runs[-1]["protrusion_voxels_in_interior"] = round(tubes_kept, 3)
        print(
            f"\nphantom seed {seed} {shape}, keys every {every} slices, flow {flow}, protrusion radius {radius}, "
            f"interior noise {noise}, surface errors {surface} ({changed:.1%} voxels changed, {tubes_kept:.0%} of protrusion voxels kept)"
        )
        print("cell  " + "  ".join(f"{m:>8}" for m in METHODS))
        for c in cells:
            print(f"{c:>4}  " + "  ".join(f"{scores[m]['cells'][c]:8.4f}" for m in METHODS))
        print("mean  " + "  ".join(f"{scores[m]['mean']:8.4f}" for m in METHODS))
        print(f"fusion beats both single methods for {wins}/{len(cells)} cells; protrusions in right cell: {protrusions}")
    return {
        "shape": list(shape),
        "key_every": every,
        "flow": flow,
        "interior_noise": noise,
        "surface_errors": surface,
        "protrusion_radius": radius,
        "runs": runs,
    }


def real_part(flow: str) -> dict:
    import tifffile

    image = tifffile.imread(REAL / "image.tif")
    labels = tifffile.imread(REAL / "labels.tif")
    cells2d = tifffile.imread(REAL / "cells_2d.tif")
    interior = np.isin(labels, (0, 3))  # cytoplasm + mitochondria, as cells_2d was derived
    z_count = image.shape[0]
    t = time.perf_counter()
    inter3d = segment_cells(image, interior, np.zeros_like(cells2d), method="interior").cells
    t_interior = time.perf_counter() - t
    pairs = []
    pooled: dict[str, list[float]] = {m: [] for m in METHODS}
    for z in range(z_count - 1):
        img2, int2 = image[z : z + 2], interior[z : z + 2]
        keys = np.zeros((2, *image.shape[1:]), np.uint32)
        keys[0] = cells2d[z]
        truth = cells2d[z + 1]
        row: dict[str, float] = {}
        for m in METHODS:
            if m == "interior":
                pred = inter3d[z + 1]
            else:
                pred = segment_cells(img2, int2, keys, method=m, flow=flow, key_indices=[0]).cells[1]
            d = instance_dice(pred, truth)
            row[m] = round(d["mean"], 4)
            pooled[m].extend(d["cells"].values())
        pairs.append({"from": z, "to": z + 1, **row})
        print(f"slice {z} -> {z + 1}: " + "  ".join(f"{m} {row[m]:.4f}" for m in METHODS), flush=True)
    pooled_mean = {m: round(float(np.mean(v)), 4) for m, v in pooled.items()}
    wins = int(np.sum(np.array(pooled["fusion"]) > np.maximum(pooled["flow"], pooled["interior"])))
    ties = int(np.sum(np.array(pooled["fusion"]) == np.maximum(pooled["flow"], pooled["interior"])))
    print("per-cell mean over all target slices: " + "  ".join(f"{m} {pooled_mean[m]:.4f}" for m in METHODS))
    print(f"fusion beats both for {wins}/{len(pooled['fusion'])} 2D cells, ties the best for {ties}")
    return {
        "dataset": "drosophila_vnc_sstem",
        "protocol": "keys = cells_2d[z] only; score slice z+1 vs cells_2d[z+1] by overlap matching",
        "pairs": pairs,
        "pooled_mean": pooled_mean,
        "cells_scored": len(pooled["fusion"]),
        "fusion_beats_both": wins,
        "fusion_ties_best": ties,
        "interior_seconds": round(t_interior, 2),
        "flow": flow,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("phantom", "real", "both"), default="both")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shape", type=int, nargs=3, default=[48, 192, 192])
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--flow", choices=("dis", "farneback"), default="dis")
    ap.add_argument("--interior-noise", type=float, default=0.0, help="degrade the phantom interior (0.15: ~1%% voxels)")
    ap.add_argument(
        "--surface-errors", type=float, default=0.0, help="flip this fraction of surface voxels (0.1: ~1%% voxels)"
    )
    ap.add_argument(
        "--protrusion-radius", type=float, default=1.6, help="tube radius in voxels (below 1: one-voxel-wide wires)"
    )
    args = ap.parse_args()
    result: dict = {"machine": platform.platform(), "python": platform.python_version()}
    if args.part in ("phantom", "both"):
        result["phantom"] = phantom_part(
            args.seeds, tuple(args.shape), args.every, args.flow, args.interior_noise, args.protrusion_radius, args.surface_errors
        )
    if args.part in ("real", "both"):
        result["real"] = real_part(args.flow)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cells-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
