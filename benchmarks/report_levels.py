"""Error and cost of every per-cell measure at pyramid levels 0..k, on real-size phantom cells.

Each cell (8-15 µm, :class:`benchmarks._bigphantom.BigPhantom`) is generated alone in a crop
around its seed at ``--base-nm`` isotropic voxels; its pyramid is built as the app builds one
(``omezarr.downsample_mean`` / ``downsample_mode``: Y and X halved, Z kept), and
:func:`segmentation.core.features.cell_features_pyramid` measures it with every measure forced
to level k, for k = 0..``--levels``. Level 0 of a real cell at 4 nm (~10¹⁰ voxels) is too large
to compute here, so level 0 is ``--base-nm`` (32 nm by default): level k is (base·2ᵏ nm)³.

Printed and written to ``--out`` (JSON, ``benchmarks/results/report_levels.json`` by default):

* per measure (column; texture with its region folded in, the worst of them) and level:
  the largest relative error against level 0 over the cells (centroids: distance over the
  cell's cube-root size; NaN on both sides counts as equal, NaN on one side as infinite);
* the largest voxel size (nm) at which each measure stayed under ``--tolerance`` at that and
  every finer level: what ``MEASURE_MAX_VOXEL_NM`` in segmentation/core/features/pyramid.py
  holds, as a Python literal;
* seconds per cell per level, and a report of the cells with the chosen table
  (``cell_features_pyramid`` with that table, ratio against level 0 measured in the same run);
* peak RSS and the load average beside the figures.

``--background V`` writes V where no class is, as the app's truth and prediction layers hold an
explicit background value (the pyramid's 2x2 mode breaks ties towards non-zero values, so a
layer with 0 there grows small objects at coarse levels; the table in the code is the stricter
of the two).

Usage (20-30 minutes per 32 nm cell on the shared 2-core machine at load 10; 64 nm takes minutes)::

    .venv/bin/python benchmarks/report_levels.py --cells 3 --base-nm 32 --levels 3 --half-um 11
    .venv/bin/python benchmarks/report_levels.py --cells 2 --base-nm 32 --levels 3 --half-um 11 --background 6
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotations.imaging.omezarr import downsample_mean, downsample_mode  # noqa: E402
from benchmarks._bigphantom import CLASS_VALUES, BigPhantom  # noqa: E402
from benchmarks.bigvolume import peak_rss_bytes  # noqa: E402
from segmentation.core.features import DEFAULT_CLASSES, cell_features_pyramid, describe_columns  # noqa: E402
from segmentation.core.features.pyramid import measure_key  # noqa: E402

GRID = [(1, 1, 1), (1, 1, 2), (1, 2, 1), (2, 1, 1), (1, 2, 2), (2, 1, 2), (2, 2, 1), (2, 2, 2)]
CENTROIDS = ("cell_centroid_z", "cell_centroid_y", "cell_centroid_x")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cell_pyramid(ph: BigPhantom, k: tuple[int, int, int], n_levels: int, half_um: float, *,
                 background: int = 0) -> tuple[int, list[list[np.ndarray]]]:
    """Cell id of grid index ``k`` and [image, classes, cells] pyramids of a crop around its seed
    (crop origin aligned to 2**n_levels so the crop's levels are the volume's). ``background``
    is written where no class is (the app's layers hold an explicit background value, and the
    2x2 mode of the pyramid breaks ties towards non-zero values)."""
    shape = ph._shape(k)  # noqa: SLF001 - the benchmark needs the seed position
    vox = np.asarray(ph.voxel_nm)
    align = 2**n_levels
    half = np.ceil(half_um * 1000.0 / vox / align).astype(int) * align
    centre = (np.asarray(shape.centre) / vox / align).round().astype(int) * align
    lo, hi = centre - half, centre + half
    block = ph.block((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2]))
    classes = block.classes if background == 0 else np.where(block.classes == 0, np.uint8(background), block.classes)
    levels = [[block.image], [classes], [block.cells]]
    for _ in range(1, n_levels + 1):
        levels[0].append(downsample_mean(levels[0][-1]))
        levels[1].append(downsample_mode(levels[1][-1]))
        levels[2].append(downsample_mode(levels[2][-1]))
    return shape.id, levels


def rel_error(column: str, a: float, b: float, size_vox: float) -> float:
    """Relative error of ``b`` against ``a`` (see the module docstring)."""
    if isinstance(a, (bool, np.bool_)):
        return 0.0 if bool(a) == bool(b) else math.inf
    a, b = float(a), float(b)
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    if column in CENTROIDS:
        return abs(a - b) / size_vox
    if a == 0:
        return 0.0 if b == 0 else math.inf
    return abs(a - b) / abs(a)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=4, help="cells measured (grid indices near the origin)")
    p.add_argument("--base-nm", type=float, default=32.0, help="level-0 voxel size, nm (isotropic)")
    p.add_argument("--levels", type=int, default=3, help="coarsest level measured")
    p.add_argument("--half-um", type=float, default=11.5, help="crop half-size around a cell's seed, µm")
    p.add_argument("--tolerance", type=float, default=0.01, help="largest relative error accepted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--background", type=int, default=0,
                   help="class value written where no class is (0: none; the app's layers use an explicit value)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "report_levels.json")
    args = p.parse_args(argv)

    base = float(args.base_nm)
    spacing = (base, base, base)
    extent_vox = int(math.ceil(5 * 11.5 * 1000 / base))
    ph = BigPhantom((extent_vox,) * 3, voxel_nm=spacing, seed=args.seed)
    classes = {name: CLASS_VALUES[name] for name in DEFAULT_CLASSES}
    columns = [c for c in describe_columns(classes) if c != "cell_id"]
    n_levels = args.levels + 1
    results: dict[int, list[pd.DataFrame]] = {}  # level -> one-row tables
    seconds: dict[int, list[float]] = {k: [] for k in range(n_levels)}
    cpu: dict[int, list[float]] = {k: [] for k in range(n_levels)}
    report_seconds: list[float] = []
    report_cpu: list[float] = []
    report_tables: list[pd.DataFrame] = []
    box_voxels: list[int] = []
    pyramids = []
    print(f"load {load()}: generating and measuring {args.cells} cells at {base:g} nm, levels 0..{args.levels}",
          flush=True)
    for k in GRID[: args.cells]:
        t0 = time.monotonic()
        cid, (image, labels, cells) = cell_pyramid(ph, k, args.levels, args.half_um, background=args.background)
        gen_s = time.monotonic() - t0
        in_cell = cells[0] == cid
        touches = [bool(np.take(in_cell, [0, -1], axis=a).any()) for a in range(3)]
        box_voxels.append(int(np.prod([np.ptp(np.flatnonzero(in_cell.any(axis=tuple(b for b in range(3) if b != a)))) + 1
                                       for a in range(3)])))
        del in_cell
        if any(touches):
            print(f"cell {cid} (grid {k}) touches its crop: widen --half-um; skipped", flush=True)
            continue
        for level in range(n_levels):
            limits = {c: base * 2**level for c in columns}
            t0, c0 = time.monotonic(), time.process_time()
            table = cell_features_pyramid(image, labels, cells, voxel_size_nm=spacing, classes=classes,
                                          cell_ids=[cid], limits=limits, intensity_range=(0.0, 256.0)).table
            seconds[level].append(time.monotonic() - t0)
            cpu[level].append(time.process_time() - c0)
            results.setdefault(level, []).append(table)
        pyramids.append((cid, image, labels, cells))
        row = results[0][-1].iloc[0]
        print(f"cell {cid}: {row['cell_volume_um3']:.0f} µm³, box {box_voxels[-1] / 1e6:.0f} M voxels at {base:g} nm, "
              f"generated in {gen_s:.1f} s; seconds per level {[round(seconds[lv][-1], 2) for lv in range(n_levels)]} "
              f"(CPU {[round(cpu[lv][-1], 2) for lv in range(n_levels)]}); "
              f"load {load()}, peak RSS {peak_rss_bytes() / 2**30:.2f} GiB", flush=True)
    if not results:
        print("no cell measured")
        return 1

    tables = {level: pd.concat(ts, ignore_index=True) for level, ts in results.items()}
    ref = tables[0]
    size = ref["cell_voxels"].to_numpy(np.float64) ** (1 / 3)
    errors: dict[str, dict[int, float]] = {}  # measure key -> level -> worst error
    for column in columns:
        # Texture regions folded (90 columns, one behaviour); classes kept: a nucleus volume may
        # allow a coarser level than a lysosome's.
        key = measure_key(column, classes) if column.startswith("texture_") else column
        for level, table in tables.items():
            worst = max(rel_error(column, a, b, s) for a, b, s in zip(ref[column], table[column], size))
            errors.setdefault(key, {})
            errors[key][level] = max(errors[key].get(level, 0.0), worst)
    chosen: dict[str, float] = {}
    for key, by_level in errors.items():
        level = 0
        while level + 1 < n_levels and by_level[level + 1] < args.tolerance:
            level += 1
        if level > 0:
            chosen[key] = base * 2**level

    # A report of the same cells with the chosen table, against level 0 in this run.
    for cid, image, labels, cells in pyramids:
        t0, c0 = time.monotonic(), time.process_time()
        table = cell_features_pyramid(image, labels, cells, voxel_size_nm=spacing, classes=classes,
                                      cell_ids=[cid], limits=chosen, intensity_range=(0.0, 256.0)).table
        report_seconds.append(time.monotonic() - t0)
        report_cpu.append(time.process_time() - c0)
        report_tables.append(table)
    report = pd.concat(report_tables, ignore_index=True)
    worst_report = max(
        rel_error(c, a, b, s) for c in columns if c != "cell_touches_border"
        for a, b, s in zip(ref[c], report[c], size))

    header = "measure".ljust(34) + "".join(f"{base * 2**lv:>9g}nm" for lv in range(n_levels)) + "   chosen"
    print("\nlargest relative error against level 0 (%), over cells and classes")
    print(header)
    for key, by_level in errors.items():
        cells_ = "".join(f"{100 * by_level[lv]:>11.2f}" if math.isfinite(by_level[lv]) else f"{'inf':>11}"
                         for lv in range(n_levels))
        print(f"{key:<34}{cells_}   {chosen.get(key, base):g} nm")
    per_level = {lv: float(np.mean(seconds[lv])) for lv in range(n_levels)}
    cpu_level = {lv: float(np.mean(cpu[lv])) for lv in range(n_levels)}
    mean_report = float(np.mean(report_seconds))
    cpu_report = float(np.mean(report_cpu))
    print("\nseconds per cell (wall / CPU): " + ", ".join(
        f"level {lv} ({base * 2**lv:g} nm) {s:.2f} / {cpu_level[lv]:.2f}" for lv, s in per_level.items()))
    print(f"report with the chosen table: {mean_report:.2f} s wall, {cpu_report:.2f} s CPU per cell = "
          f"{cpu_report / cpu_level[0]:.3f} x level 0 in CPU (worst error of any measure against level 0: "
          f"{100 * worst_report:.2f} %); 100 cells: {100 * cpu_report / 60:.1f} CPU-min")
    print(f"load {load()}, peak RSS {peak_rss_bytes() / 2**30:.2f} GiB")
    print("\nMEASURE_MAX_VOXEL_NM = " + json.dumps(chosen, indent=4))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "base_nm": base, "levels": args.levels, "tolerance": args.tolerance, "cells": [c[0] for c in pyramids],
        "cell_volume_um3": [float(v) for v in ref["cell_volume_um3"]], "box_voxels": box_voxels,
        "errors": {k: {str(lv): (e if math.isfinite(e) else None) for lv, e in v.items()} for k, v in errors.items()},
        "chosen_max_voxel_nm": chosen, "seconds_per_cell": per_level, "report_seconds_per_cell": mean_report,
        "cpu_seconds_per_cell": cpu_level, "report_cpu_seconds_per_cell": cpu_report, "background": args.background,
        "report_worst_error": worst_report, "peak_rss_bytes": peak_rss_bytes(), "load": load(),
    }, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
