"""Reports at scale: cells per second with 1 and 2 worker processes measuring a report's units.

A generated FIB-SEM-like volume with real-size phantom cells (benchmarks/bigvolume.py,
OME-Zarr with its truth layers ``classes`` and ``cells``, at ``--voxel-nm``) is reported on by
the code a report job runs: :func:`segmentation.reports.services.report_plan` cuts the cells
into units, and 1, then 2 worker processes (spawned, one numpy thread each) run
:func:`segmentation.reports.units.units_work` with
:func:`segmentation.reports.services.report_unit_compute` side by side, claiming units through
the same files a report job's task and helper tasks use; the rows are then merged as the job's
task merges them. Figures, all measured in this run:

* ``cells_per_s`` with 1 and with 2 workers (wall clock from the moment every worker is ready
  to the last unit done) and ``speedup_2_workers``, their ratio (2.0 at best);
* ``cpu_ratio_2_vs_1``: CPU seconds of the 2 workers together over those of the 1 worker (the
  cost of splitting, which the machine's load does not move), and ``free_cores_speedup_bound``,
  2 over it: what 2 workers would reach on 2 free cores with balanced units;
* ``equal``: the 2-worker tables and mesh files are the bytes of the 1-worker ones;
* peak RSS of each worker and of this process, and the load average (``os.getloadavg``)
  before and after each run: on a shared machine a second worker may find no free core.

Usage::

    .venv/bin/python benchmarks/report_workers.py --shape 128 384 384 --voxel-nm 100 \\
        --out benchmarks/results/report_workers.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per worker
    os.environ.setdefault(_name, "1")

LABELS, CELLS = "classes", "cells"


def _worker(dest: str, partial: str, ready: Any, go: Any, out: Any) -> None:
    """One worker: set Django up, wait for the start, measure units until none is left."""
    import django

    django.setup()
    from segmentation.reports.services import report_unit_compute
    from segmentation.reports.units import plan_read, units_work

    plan = plan_read(Path(partial))
    compute = report_unit_compute(Path(dest), Path(partial), plan)
    ready.put(os.getpid())
    go.wait()
    cpu0 = time.process_time()
    ran = units_work(Path(partial), plan, compute, should_stop=lambda: False)
    out.put({"pid": os.getpid(), "units": ran, "cpu_s": round(time.process_time() - cpu0, 3),
             "rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def _run(workers: int, dest: Path, plan: Any, media: Path) -> dict[str, Any]:
    from segmentation.reports.units import UNITS_DIR, plan_write, unit_read, units_merge

    partial = media / "reports" / f".partial-{workers}-bench"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "meshes").mkdir(parents=True)
    plan_write(partial, plan)
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(dest), str(partial), ready, go, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    go.set()
    stats = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    for p in procs:
        p.join()
    t1 = time.perf_counter()
    parts = [unit_read(partial, i) for i in range(len(plan.units))]
    from segmentation.core.features import describe_columns

    merged = units_merge(parts, describe_columns(plan.classes))
    merge_s = time.perf_counter() - t1
    shutil.rmtree(partial / UNITS_DIR)
    meshes = {p.name: p.read_bytes() for p in sorted((partial / "meshes").iterdir())}
    n = len(plan.boxes)
    return {
        "workers": workers, "cells": n, "units": len(plan.units), "wall_s": round(wall, 3),
        "cpu_s": round(sum(s["cpu_s"] for s in stats), 3),
        "cells_per_s": round(n / wall, 4), "merge_s": round(merge_s, 3),
        "unit_seconds": [round(p.seconds_features + p.seconds_meshes, 3) for p in parts],
        "by_worker": stats, "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after],
        "_table": merged.table, "_meshes": meshes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=[128, 384, 384], metavar=("Z", "Y", "X"))
    p.add_argument("--voxel-nm", type=float, default=100.0, help="isotropic voxel of the generated volume")
    p.add_argument("--cell-um", type=float, default=11.5, help="spacing of the phantom's cell seeds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unit-voxels", type=int, default=None,
                   help="voxels of work per unit (default: settings.REPORT_UNIT_VOXELS)")
    p.add_argument("--no-meshes", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "report_workers.json")
    args = p.parse_args(argv)
    if args.unit_voxels is not None:
        os.environ["EMPORTAL_REPORT_UNIT_VOXELS"] = str(args.unit_voxels)

    from benchmarks._django import django_scratch

    scratch = django_scratch()
    from django.conf import settings

    from benchmarks._bigphantom import CLASS_VALUES
    from benchmarks.bigvolume import generate
    from segmentation.reports.services import FEATURE_CLASSES, report_plan

    media = Path(settings.MEDIA_ROOT)
    dest = scratch / "cells.ome.zarr"
    t = time.perf_counter()
    voxel = (args.voxel_nm,) * 3
    generate(args.shape, out=dest, fmt="ome-zarr", voxel_nm=voxel, seed=args.seed, cell_um=args.cell_um, quiet=True)
    generate_s = time.perf_counter() - t
    classes = {name: int(CLASS_VALUES[name]) for name in FEATURE_CLASSES if name in CLASS_VALUES}
    t = time.perf_counter()
    plan, _ = report_plan(dest, labels_layer=LABELS, cells_layer=CELLS, classes=classes, voxel_size_nm=voxel,
                          meshes=not args.no_meshes)
    plan_s = time.perf_counter() - t
    print(f"volume {'x'.join(map(str, args.shape))} at {args.voxel_nm:g} nm generated in {generate_s:.0f} s; "
          f"{len(plan.boxes)} cells in {len(plan.units)} units (plan {plan_s:.1f} s)", flush=True)

    runs = []
    for workers in (1, 2):
        run = _run(workers, dest, plan, media)
        runs.append(run)
        print(f"{workers} worker(s): {run['cells_per_s']:.3f} cells/s ({run['wall_s']:.1f} s), units per worker "
              f"{[s['units'] for s in run['by_worker']]}, RSS {[s['rss_mib'] for s in run['by_worker']]} MiB, "
              f"load {run['load_before'][0]:.1f} -> {run['load_after'][0]:.1f}", flush=True)
    one, two = runs
    equal = bool(one["_table"].equals(two["_table"]) and one["_meshes"] == two["_meshes"])
    speedup = two["cells_per_s"] / one["cells_per_s"]
    cpu_ratio = two["cpu_s"] / one["cpu_s"]
    print(f"CPU seconds: 1 worker {one['cpu_s']:.1f}, 2 workers {two['cpu_s']:.1f} (ratio {cpu_ratio:.3f}; "
          f"on 2 free cores at most {2 / cpu_ratio:.2f}x)")
    print(f"2 workers / 1 worker: {speedup:.2f}x; tables and meshes equal: {equal}; "
          f"own peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    report = {
        "benchmark": "report_workers", "shape": args.shape, "voxel_nm": args.voxel_nm, "cell_um": args.cell_um,
        "seed": args.seed, "cells": len(plan.boxes), "units": len(plan.units), "generate_s": round(generate_s, 1),
        "plan_s": round(plan_s, 2), "meshes": not args.no_meshes, "cpus": os.cpu_count(),
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "speedup_2_workers": round(speedup, 3), "cpu_ratio_2_vs_1": round(cpu_ratio, 3),
        "free_cores_speedup_bound": round(2 / cpu_ratio, 3), "equal": equal,
        "own_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
