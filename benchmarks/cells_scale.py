"""Cells at scale: the fusion run interval by interval over a generated OME-Zarr, slice by slice.

A volume from :mod:`benchmarks.bigvolume` (FIB-SEM-like, truth for every cell) is
segmented by :func:`segmentation.core.cell_intervals.fuse_interval` one key-slice
interval at a time, reading image, interior and keys one slice at a time from the store
and writing each fused slice straight into an on-disk zarr array, then stitched by
tracking (:func:`segmentation.core.cell_intervals.stitch`). Keys are the truth cells on
every ``--every``-th slice; the interior is the truth interior (cells > 0).

Measured, each run in a fresh process so its peak RSS is its own:

* the first ``Z`` slices of the volume for each ``--sizes`` Z (one process): seconds
  per slice of the intervals and of the stitch, and peak RSS, which should stay flat
  as Z grows;
* the largest size with 1 and with ``--processes`` processes sharing the intervals:
  the speed-up (the machine is shared: the 1-minute load average is printed);
* per-cell Dice of the largest run against the truth (read whole, in the parent only).

Usage (from the project root)::

    .venv/bin/python benchmarks/cells_scale.py [--shape 128 512 512] [--sizes 32 64 128]
        [--voxel-nm 40] [--cell-um 6] [--every 16] [--processes 2] [--volume /tmp/cells-scale.ome.zarr]

Prints a table and writes benchmarks/results/cells-scale-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.cell_intervals import Interval, fuse_interval, key_intervals, stitch  # noqa: E402


class Prefix:
    """The first ``z`` slices of a (Z, Y, X) zarr array, read a slice (or a slab) at a time."""

    def __init__(self, arr: Any, z: int) -> None:
        self.arr, self.shape = arr, (z, *arr.shape[1:])

    def __getitem__(self, i: Any) -> np.ndarray:
        return np.asarray(self.arr[i])


class Interior(Prefix):
    """Truth interior: cells > 0."""

    def __getitem__(self, i: Any) -> np.ndarray:
        return np.asarray(self.arr[i]) > 0


class Keys(Prefix):
    """Truth cells on every ``every``-th slice, 0 elsewhere (one slice at a time)."""

    def __init__(self, arr: Any, z: int, every: int) -> None:
        super().__init__(arr, z)
        self.every = every

    def __getitem__(self, i: Any) -> np.ndarray:
        if i % self.every:
            return np.zeros(self.shape[1:], np.uint32)
        return np.asarray(self.arr[i]).astype(np.uint32)


def _open(volume: Path, z: int, every: int) -> tuple[Prefix, Interior, Keys]:
    import zarr

    image = zarr.open_array(str(volume / "0"), mode="r")
    cells = zarr.open_array(str(volume / "labels" / "cells" / "0"), mode="r")
    return Prefix(image, z), Interior(cells, z), Keys(cells, z, every)


def hwm_bytes() -> int:
    """This process's own peak RSS (VmHWM): unlike ru_maxrss it starts afresh at exec, not at the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _interval(args: tuple[str, str, int, int, Interval]) -> tuple[int, float, int]:
    """One interval in a worker process: read from the volume, write into the output store."""
    import zarr

    volume, out_path, z, every, interval = args
    image, interior, keys = _open(Path(volume), z, every)
    out = zarr.open_array(out_path, mode="r+")
    t = time.perf_counter()

    def sink(zz: int, ids: np.ndarray) -> None:
        out[zz] = ids

    top = fuse_interval(image, interior, keys, interval, sink)
    return top, time.perf_counter() - t, hwm_bytes()


def child(volume: Path, z: int, every: int, processes: int, out_path: str) -> dict[str, Any]:
    """One measured run (in its own process): intervals, then the stitch."""
    import zarr

    image, interior, _keys = _open(volume, z, every)
    out = zarr.create_array(store=out_path, shape=image.shape, chunks=(1, *image.shape[1:]), dtype="uint32",
                            overwrite=True)
    intervals = key_intervals(z, list(range(0, z, every)))
    jobs = [(str(volume), out_path, z, every, iv) for iv in intervals]
    t0 = time.perf_counter()
    if processes == 1:
        results = [_interval(j) for j in jobs]
    else:
        with ProcessPoolExecutor(processes) as pool:
            results = list(pool.map(_interval, jobs))
    t1 = time.perf_counter()
    res = stitch(out, interior, first_new_id=max(r[0] for r in results) + 1)
    t2 = time.perf_counter()
    own = hwm_bytes()
    kids = max(r[2] for r in results)  # a worker's own peak (in one process: this process's)
    return {
        "slices": z,
        "shape": list(image.shape),
        "processes": processes,
        "intervals": len(intervals),
        "interval_seconds": round(t1 - t0, 2),
        "seconds_per_slice": round((t1 - t0) / z, 4),
        "interval_seconds_each": [round(r[1], 2) for r in results],
        "stitch_seconds": round(t2 - t1, 2),
        "tracked_regions": res.tracked_regions,
        "unresolved": len(res.unresolved),
        "peak_rss_mib": round(own / 2**20, 1),
        "peak_rss_worker_mib": round(kids / 2**20, 1) if processes > 1 else None,
        "load_before_after": None,
    }


def _run_child(volume: Path, z: int, every: int, processes: int, out_path: str) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child", str(volume), str(z), str(every), str(processes), out_path]
    got = subprocess.run(cmd, check=True, capture_output=True, text=True)
    row: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    row["load_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return row


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        volume, z, every, processes, out_path = sys.argv[2:7]
        print(json.dumps(child(Path(volume), int(z), int(every), int(processes), out_path)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 512, 512])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--voxel-nm", type=float, default=40.0)
    ap.add_argument("--cell-um", type=float, default=6.0)
    ap.add_argument("--every", type=int, default=16)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--volume", type=Path, default=Path(tempfile.gettempdir()) / "cells-scale.ome.zarr")
    args = ap.parse_args()
    if max(args.sizes) > args.shape[0]:
        ap.error(f"sizes {args.sizes} exceed the volume's {args.shape[0]} slices")
    if not args.volume.exists():
        from benchmarks.bigvolume import generate

        print(f"generating {args.shape} at {args.voxel_nm} nm into {args.volume}", flush=True)
        generate(args.shape, out=args.volume, fmt="ome-zarr", voxel_nm=(args.voxel_nm,) * 3, cell_um=args.cell_um,
                 quiet=True)
    rows = []
    # Runs keep their outputs until the end and the Dice is computed last, so runs take the
    # machine to themselves as far as this script goes.
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(z, 1) for z in args.sizes] + [(max(args.sizes), args.processes)] * (args.processes > 1)
        for z, procs in runs:
            out_path = str(Path(tmp) / f"cells-{z}-{procs}.zarr")
            row = _run_child(args.volume, z, args.every, procs, out_path)
            rows.append(row)
            print(
                f"Z {z:4d} x {row['shape'][1]} x {row['shape'][2]}, {procs} process(es), {row['intervals']} intervals: "
                f"{row['seconds_per_slice']:.3f} s/slice ({row['interval_seconds']:.1f} s), stitch "
                f"{row['stitch_seconds']:.1f} s ({row['tracked_regions']} regions placed, {row['unresolved']} new), peak RSS "
                f"{row['peak_rss_mib']} MiB (workers {row['peak_rss_worker_mib']}), load {row['load_before_after']}",
                flush=True,
            )
        one = next(r for r in rows if r["slices"] == max(args.sizes) and r["processes"] == 1)
        import zarr

        from segmentation.core.metrics import instance_dice

        z = max(args.sizes)
        pred = zarr.open_array(str(Path(tmp) / f"cells-{z}-1.zarr"), mode="r")[:]
        truth = zarr.open_array(str(args.volume / "labels" / "cells" / "0"), mode="r")[:z]
        d = instance_dice(pred, truth)
        one["per_cell_dice"] = round(d["mean"], 4)
        one["cells"] = len(d["cells"])
        print(f"per-cell Dice {d['mean']:.4f} over {len(d['cells'])} cells (Z {z}, 1 process)", flush=True)
    one = next(r for r in rows if r["slices"] == max(args.sizes) and r["processes"] == 1)
    many = [r for r in rows if r["processes"] > 1]
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "volume": str(args.volume),
        "voxel_nm": args.voxel_nm,
        "cell_um": args.cell_um,
        "every": args.every,
        "runs": rows,
        "speedup": round(one["interval_seconds"] / many[0]["interval_seconds"], 2) if many else None,
    }
    if many:
        print(f"speed-up of the intervals with {args.processes} processes: {result['speedup']}x")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cells-scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
