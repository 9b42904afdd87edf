"""Project the measured whole-biopsy stage rates to a 60 GB and a 500 GB volume on 1, 4 and 16 workers.

Each rate is one a benchmark measured on this machine (its command is in docs/BENCHMARKS.md);
this script only does the arithmetic, so the table can be remade when a figure changes:

    .venv/bin/python benchmarks/projections.py --import-mib-s 40 --segment-mvox-s 0.067 \
        --segment-speedup-2 2 --cells-mvox-s 5.0 --report-s-per-cell 35 --report-speedup-2 2 --cell-um 10

Segment blocks, report units and cell intervals spread over workers (reports and cells only when
their --*-speedup-2 is given); scaling past the workers measured assumes each added worker keeps
the efficiency of the second (`speedup_2 / 2` per worker; for cells, whose stitch is one process,
the shortfall is read as a serial share instead), and a shared filesystem or database that
saturates first would make the real figure worse, so those projections are a lower bound on
time. Import is one task per volume, so more workers do not shorten it (shown once).
Volumes are uint8 (one byte per voxel). Prints a markdown table and writes benchmarks/results/projections-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SIZES_GB = (60, 500)
WORKERS = (1, 4, 16)


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def projected_seconds(work: float, rate_one: float, workers: int, speedup_2: float, *, serial: bool = False) -> float:
    """Seconds for `work` units at `rate_one` units/s on one worker, spread over `workers`.

    Each added worker keeps the efficiency of the second (`speedup_2 / 2`); with `serial` the
    shortfall of `speedup_2` is read as a part of the work that never spreads (Amdahl:
    serial share `2 / speedup_2 - 1`), as for the cells job, whose stitch is one process.
    """
    if workers == 1:
        return work / rate_one
    if serial:
        share = min(1.0, max(0.0, 2.0 / speedup_2 - 1.0))
        return work / rate_one * (share + (1.0 - share) / workers)
    efficiency = min(1.0, speedup_2 / 2.0)  # of every worker, the first included: 2 workers give speedup_2
    return work / (rate_one * workers * efficiency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-mib-s", type=float, required=True, help="import throughput, one worker (MiB/s)")
    parser.add_argument("--segment-mvox-s", type=float, required=True, help="segment, one worker (Mvoxel/s)")
    parser.add_argument("--segment-speedup-2", type=float, required=True, help="segment speed-up with 2 workers")
    parser.add_argument("--cells-mvox-s", type=float, required=True, help="cell propagation, one task (Mvoxel/s)")
    parser.add_argument("--cells-speedup-2", type=float, default=None,
                        help="cells job speed-up with 2 workers (omitted: one task); its stitch stays one process")
    parser.add_argument("--report-s-per-cell", type=float, required=True, help="report seconds per real-size cell")
    parser.add_argument("--report-speedup-2", type=float, default=None,
                        help="report speed-up with 2 workers (its cells are units spread over workers)")
    parser.add_argument("--cell-um", type=float, default=10.0, help="cell diameter (µm) to count cells per volume")
    parser.add_argument("--voxel-nm", type=float, default=4.0, help="isotropic voxel size (nm)")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []
    for size_gb in SIZES_GB:
        voxels = size_gb * 1e9
        cube_um3 = voxels * (args.voxel_nm / 1000) ** 3
        cells = cube_um3 / (args.cell_um ** 3)  # packed cubes: an upper bound on cells per volume
        stages = {  # work units, rate on one worker (units/s), speed-up with 2 workers (None: one task)
            "import": (voxels / 2**20, args.import_mib_s, None),
            "segment": (voxels / 1e6, args.segment_mvox_s, args.segment_speedup_2),
            "cells": (voxels / 1e6, args.cells_mvox_s, args.cells_speedup_2),
            "report": (cells, 1.0 / args.report_s_per_cell, args.report_speedup_2),
        }
        for stage, (work, rate, speedup_2) in stages.items():
            for workers in WORKERS if speedup_2 is not None else (1,):
                rows.append({"size_gb": size_gb, "stage": stage, "workers": workers, "cells": round(cells),
                             "seconds": projected_seconds(work, rate, workers, speedup_2 or 1.0,
                                                          serial=stage == "cells")})

    print(f"| stage | workers | {' | '.join(f'{s} GB' for s in SIZES_GB)} |")
    print("|---|---|" + "---|" * len(SIZES_GB))
    for stage in ("import", "segment", "cells", "report"):
        for workers in WORKERS:
            found = [r for r in rows if r["stage"] == stage and r["workers"] == workers]
            if found:
                print(f"| {stage} | {workers} | " + " | ".join(_hours(float(r["seconds"])) for r in found) + " |")
    out = Path(__file__).resolve().parent / "results" / f"projections-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"inputs": vars(args), "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
