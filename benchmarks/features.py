"""Benchmark: per-cell feature time and memory as the volume grows.

    .venv/bin/python benchmarks/features.py [--sizes 24x96x96 32x128x128 ...] [--cells 8]

For each phantom size it times :func:`segmentation.core.features.cell_features` (whole
table, per cell, per million cell voxels) and, as the baseline measured in the same run on
the same data, the cheapest per-cell answer there is: cell volumes by one ``np.bincount``
over the cells volume. It also records the peak memory that ``cell_features`` allocates
(tracemalloc, second run) next to the voxels of the largest cell box, which is what that
peak should follow. Results go to ``benchmarks/results/features.json`` and stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.features import cell_bounding_boxes, cell_features  # noqa: E402
from segmentation.core.phantom import make_phantom  # noqa: E402


def _size(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"size {text!r} is not ZxYxX")
    return parts


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_one(shape: tuple[int, int, int], n_cells: int, repeat: int, seed: int) -> dict[str, object]:
    ph = make_phantom(shape, seed=seed, n_cells=n_cells)
    kwargs = dict(voxel_size_nm=ph.voxel_size_nm, intensity_range=(0.0, 256.0))
    boxes = cell_bounding_boxes(ph.cells)
    n = len(boxes)
    cell_voxels = int(np.count_nonzero(ph.cells))
    largest_box = max(int(np.prod([s.stop - s.start for s in b])) for b in boxes.values())

    baseline_s = _best_of(repeat, lambda: np.bincount(ph.cells.ravel()))
    features_s = _best_of(repeat, lambda: cell_features(ph.image, ph.labels, ph.cells, **kwargs))

    tracemalloc.start()
    cell_features(ph.image, ph.labels, ph.cells, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "shape": list(shape),
        "volume_voxels": int(np.prod(shape)),
        "cells": n,
        "cell_voxels": cell_voxels,
        "largest_cell_box_voxels": largest_box,
        "baseline_bincount_s": baseline_s,
        "features_s": features_s,
        "features_per_cell_s": features_s / n,
        "features_per_mvoxel_of_cells_s": features_s / (cell_voxels / 1e6),
        "ratio_to_baseline": features_s / baseline_s,
        "peak_alloc_mb": peak / 2**20,
        "peak_alloc_bytes_per_largest_box_voxel": peak / largest_box,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(24, 96, 96), (32, 128, 128), (48, 192, 192), (64, 256, 256)])
    parser.add_argument("--cells", type=int, default=8, help="cells per phantom (fixed, so cells grow with the volume)")
    parser.add_argument("--repeat", type=int, default=2, help="timing runs per size; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "features.json")
    args = parser.parse_args(argv)

    rows = []
    for shape in args.sizes:
        row = run_one(shape, args.cells, args.repeat, args.seed)
        rows.append(row)
        print(
            f"{'x'.join(map(str, shape)):>12}: {row['cells']} cells, {row['features_s']:.2f} s "
            f"({row['features_per_cell_s']:.3f} s/cell, {row['features_per_mvoxel_of_cells_s']:.2f} s per Mvoxel of cells), "
            f"{row['ratio_to_baseline']:.0f}x the bincount baseline, peak {row['peak_alloc_mb']:.0f} MB "
            f"= {row['peak_alloc_bytes_per_largest_box_voxel']:.0f} B per voxel of the largest cell box",
            flush=True,
        )
    first, last = rows[0], rows[-1]
    growth = {
        "volume_ratio": last["volume_voxels"] / first["volume_voxels"],
        "per_cell_time_ratio": last["features_per_cell_s"] / first["features_per_cell_s"],
        "peak_memory_ratio": last["peak_alloc_mb"] / first["peak_alloc_mb"],
        "largest_box_ratio": last["largest_cell_box_voxels"] / first["largest_cell_box_voxels"],
    }
    print(f"growth first->last size: {json.dumps({k: round(v, 2) for k, v in growth.items()})}")
    report = {
        "benchmark": "features",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "cells_per_phantom": args.cells,
        "repeat": args.repeat,
        "rows": rows,
        "growth": growth,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
