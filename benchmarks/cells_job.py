"""The cells job at scale: peak RSS of the Django job's default run (fusion, no compare) as the volume grows.

Each size runs in a fresh process on a throw-away database and media root
(:mod:`benchmarks._django`): a volume from :mod:`benchmarks.bigvolume` (FIB-SEM-like, truth
for every cell) is generated with ``Z`` slices, its truth cells painted into the "cells"
layer on every ``--every``-th slice (the keys), a prediction layer holding the truth
interior (cells > 0) as the cell class, the truth cells as "cells_truth" (so the job counts
Dice too), all written slab by slab. Then ``volume_cells_run`` runs through
``job_running`` with no helper task, and the process's peak RSS (VmHWM) is reset just before it
and read after it. A job that reads the volume whole holds, at least, the ids of every
voxel (4 bytes each) several times over; a bounded one stays flat as ``Z`` grows.

Usage (from the project root)::

    .venv/bin/python benchmarks/cells_job.py [--sizes 64 256] [--yx 512] [--voxel-nm 40] [--cell-um 6] [--every 16]

Prints one line per size and writes benchmarks/results/cells-job-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cells_scale import hwm_bytes  # noqa: E402

SLAB = 16


def _reset_hwm() -> bool:
    """Start VmHWM afresh at the current RSS (Linux: ``5`` into clear_refs), so the peak
    read after the job is the job's, not the volume generator's; False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(z: int, yx: int, voxel_nm: float, cell_um: float, every: int) -> dict[str, Any]:
    """One measured job (in its own process)."""
    from benchmarks._django import django_scratch

    scratch = django_scratch()
    import zarr

    from annotations.imaging import omezarr
    from annotations.layer_names import LayerName
    from annotations.layers import layer_bump, layer_create
    from annotations.models import Volume
    from annotations.services import project_member_add, volume_finish_import
    from annotations.storage import volume_zarr_path
    from benchmarks.bigvolume import generate
    from emportal.jobs.services import job_running
    from segmentation.cells.services import volume_cells, volume_cells_run
    from segmentation.models import ModelVersion, SegmentationRun

    membership = project_member_add("Bench", "bench", "annotator")
    project, user = membership.project, membership.user
    src = scratch / "generated.ome.zarr"
    t = time.perf_counter()
    generate((z, yx, yx), out=src, fmt="ome-zarr", voxel_nm=(voxel_nm,) * 3, cell_um=cell_um, quiet=True)
    generated_s = time.perf_counter() - t
    volume = Volume.objects.create(project=project, name="cells", source={"file": "bigvolume.py"})
    dest = volume_zarr_path(volume)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("labels"))
    volume = volume_finish_import(volume, info=omezarr.read_info(dest), voxel_size_nm=(voxel_nm,) * 3,
                                  source_format="ome-zarr")
    truth = zarr.open_array(str(src / "labels" / "cells" / "0"), mode="r")
    classes = {c.name: c.value for c in project.label_classes.all()}
    model = ModelVersion.objects.create(project=project, volume=volume, weights="models/none.pt", classes=classes,
                                        hierarchy={}, config={"interior_class": "cell"})
    layers = {name: layer_create(volume, name) for name in (LayerName.CELLS, LayerName.PREDICTION)}
    layers[LayerName.CELLS_TRUTH] = layer_create(volume, LayerName.CELLS_TRUTH, kind="instances", editable=False)
    arrays = {name: omezarr.open_label_level(dest, name, 0, mode="r+") for name in layers}
    for z0 in range(0, z, SLAB):
        z1 = min(z0 + SLAB, z)
        cells = np.asarray(truth[z0:z1]).astype(np.uint32)
        keys = np.zeros_like(cells)
        for i in range(z0, z1):
            if i % every == 0 or i == z - 1:
                keys[i - z0] = cells[i - z0]
        pred = np.where(cells > 0, classes["cell"], classes["background"])
        for name, data in ((LayerName.CELLS, keys), (LayerName.PREDICTION, pred), (LayerName.CELLS_TRUTH, cells)):
            arrays[name][z0:z1] = data.astype(arrays[name].dtype)
            omezarr.update_label_pyramid(dest, name, z=(z0, z1))
            layer_bump(layers[name], max_value=int(data.max(initial=0)))
    SegmentationRun.objects.create(volume=volume, model_version=model, layer=LayerName.PREDICTION)
    job = volume_cells(volume, user, method="fusion", helpers=0, enqueue=lambda job_id: None)
    reset = _reset_hwm()
    before = hwm_bytes()
    t = time.perf_counter()
    with job_running(job.pk) as ctx:
        volume_cells_run(ctx)
    seconds = time.perf_counter() - t
    peak = hwm_bytes()
    job.refresh_from_db()
    run = SegmentationRun.objects.filter(job=job).first()
    return {"shape": [z, yx, yx], "state": job.state, "message": job.message, "seconds": round(seconds, 1),
            "seconds_per_slice": round(seconds / z, 3), "generated_s": round(generated_s, 1),
            "hwm_reset": reset, "rss_before_mib": round(before / 2**20, 1), "peak_rss_mib": round(peak / 2**20, 1),
            "growth_mib": round((peak - before) / 2**20, 1), "ids_mib": round(z * yx * yx * 4 / 2**20, 1),
            "cells": len(run.outputs["cells"]) if run else None,
            "dice": run.outputs["dice"].get("fusion", {}).get("mean") if run else None}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        z, yx, voxel_nm, cell_um, every = sys.argv[2:7]
        print(json.dumps(child(int(z), int(yx), float(voxel_nm), float(cell_um), int(every))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--yx", type=int, default=512)
    ap.add_argument("--voxel-nm", type=float, default=40.0)
    ap.add_argument("--cell-um", type=float, default=6.0)
    ap.add_argument("--every", type=int, default=16)
    args = ap.parse_args()
    rows = []
    for z in args.sizes:
        load0 = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child", str(z), str(args.yx), str(args.voxel_nm), str(args.cell_um),
               str(args.every)]
        got = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        row: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
        row["load_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        rows.append(row)
        print(f"{' x '.join(map(str, row['shape']))}: {row['state']} in {row['seconds']} s "
              f"({row['seconds_per_slice']} s/slice), peak RSS {row['peak_rss_mib']} MiB "
              f"(+{row['growth_mib']} MiB during the job; the ids alone are {row['ids_mib']} MiB), "
              f"{row['cells']} cells, Dice {row['dice']}, load {row['load_before_after']}", flush=True)
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "args": vars(args), "runs": rows}
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cells-job-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
