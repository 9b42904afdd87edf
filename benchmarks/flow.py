"""Speed of optical-flow propagation at 1024 x 1024 against the bare OpenCV flow call.

On the real drosophila_vnc_sstem slices (1024 x 1024, uint8), in one run:

* baseline: the bare OpenCV call (DIS medium preset, or Farneback) on each consecutive
  pair of already contrast-normalised slices, nothing else;
* propagation: :func:`segmentation.core.propagation.propagate_labels` carrying the
  2D instances of slice 0 (thousands of ids) through every slice, which adds reading,
  normalising and nearest-neighbour warping.

The figure is the ratio of slices/s (propagation / bare flow; 1.0 = no overhead).
Then the process's CPU time against the number of slices (the stack is mirrored to
make longer ones; CPU rather than wall time because the machine is shared), with a
least-squares line through the origin: linear cost means a constant time per slice
and an R^2 near 1.

Usage (from the project root)::

    .venv/bin/python benchmarks/flow.py [--slices 10] [--lengths 5 10 20 40] [--methods dis farneback]

Prints a table and writes benchmarks/results/flow-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.propagation import normalise_slice, propagate_labels  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "drosophila_vnc_sstem"


def _stack(image: np.ndarray, n: int) -> np.ndarray:
    """``n`` slices by mirroring the real stack (0..9, 8..0, 1..9, ...), so neighbours stay real neighbours."""
    order: list[int] = []
    z, step = 0, 1
    while len(order) < n:
        order.append(z)
        if not 0 <= z + step < image.shape[0]:
            step = -step
        z += step
    return image[order]


def bare_flow_seconds(stack: np.ndarray, method: str, *, cpu: bool = False) -> float:
    """Seconds of the bare OpenCV flow calls alone over consecutive pairs."""
    norm = [normalise_slice(p) for p in stack]  # not timed: the baseline is the flow call alone
    clock = time.process_time if cpu else time.perf_counter
    # The cv2 stubs require `flow`; OpenCV takes None and allocates it.
    if method == "dis":
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        t = clock()
        for z in range(1, len(norm)):
            dis.calc(norm[z], norm[z - 1], None)  # type: ignore[call-overload]
    else:
        t = clock()
        for z in range(1, len(norm)):
            cv2.calcOpticalFlowFarneback(norm[z], norm[z - 1], None, 0.5, 4, 21, 3, 5, 1.1, 0)  # type: ignore[call-overload]
    return clock() - t


def propagation_seconds(stack: np.ndarray, keys0: np.ndarray, method: str, *, cpu: bool = False) -> float:
    """Wall seconds of one propagation (CPU seconds of this process with ``cpu``)."""
    keys = np.zeros(stack.shape, np.uint32)
    keys[0] = keys0
    clock = time.process_time if cpu else time.perf_counter
    t = clock()
    propagate_labels(stack, keys, method=method, key_indices=[0])
    return clock() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=10, help="slices for the ratio (default 10)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[5, 10, 20, 40], help="stack lengths for linearity")
    ap.add_argument("--methods", nargs="+", default=["dis", "farneback"], choices=["dis", "farneback"])
    args = ap.parse_args()
    import tifffile

    image = tifffile.imread(DATA / "image.tif")
    keys0 = tifffile.imread(DATA / "cells_2d.tif")[0].astype(np.uint32)
    cv2.setNumThreads(1)  # the machine is shared; one thread for both sides keeps the ratio fair
    result: dict = {"machine": platform.platform(), "opencv": cv2.__version__, "slice_shape": list(image.shape[1:])}
    stack = _stack(image, args.slices)
    pairs = args.slices - 1
    print(f"ratio on {args.slices} slices of {image.shape[1]}x{image.shape[2]} (opencv threads: 1)")
    for method in args.methods:
        # Interleaved, best of three, both in wall time and in this process's CPU time.
        wall_b, wall_p, cpu_b, cpu_p = [], [], [], []
        for _ in range(3):
            wall_b.append(bare_flow_seconds(stack, method))
            wall_p.append(propagation_seconds(stack, keys0, method))
            cpu_b.append(bare_flow_seconds(stack, method, cpu=True))
            cpu_p.append(propagation_seconds(stack, keys0, method, cpu=True))
        bare, prop = min(wall_b), min(wall_p)
        row = {
            "bare_flow_slices_per_s": round(pairs / bare, 3),
            "propagation_slices_per_s": round(pairs / prop, 3),
            "ratio": round(bare / prop, 3),
            "ratio_cpu": round(min(cpu_b) / min(cpu_p), 3),
        }
        result[method] = row
        print(
            f"  {method:9} bare flow {row['bare_flow_slices_per_s']:6.2f} slices/s   propagation "
            f"{row['propagation_slices_per_s']:6.2f} slices/s   ratio {row['ratio']:.2f} (CPU time: {row['ratio_cpu']:.2f})"
        )
    # CPU time of this process (OpenCV on one thread), best of two: the machine is shared
    # with other jobs, which inflate wall time at random but not this process's CPU time.
    print("CPU time vs number of slices (dis):")
    ns, ts = [], []
    for n in args.lengths:
        sec = min(propagation_seconds(_stack(image, n), keys0, "dis", cpu=True) for _ in range(2))
        ns.append(n - 1)
        ts.append(sec)
        print(f"  {n:4} slices  {sec:7.2f} s  {sec / (n - 1):.3f} s/slice")
    x, y = np.array(ns, float), np.array(ts, float)
    slope = float(x @ y / (x @ x))
    r2 = 1.0 - float(np.sum((y - slope * x) ** 2) / np.sum((y - y.mean()) ** 2))
    result["linearity"] = {
        "slices_carried": ns,
        "cpu_seconds": [round(t, 3) for t in ts],
        "seconds_per_slice_fit": round(slope, 4),
        "r2_through_origin": round(r2, 4),
    }
    print(f"  fit: {slope:.3f} s per slice, R^2 {r2:.4f}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"flow-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
