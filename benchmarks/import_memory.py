"""Peak memory of importing a volume larger than the memory it may use.

Writes a synthetic multipage TIFF (Z slices of SIDE x SIDE uint8, written slice by
slice so writing it needs no memory either), then converts it to an OME-Zarr pyramid
with ``annotations.imaging.write_pyramid`` in a fresh subprocess and reports that
subprocess's peak RSS (``ru_maxrss``) against the volume size. A second subprocess that
only imports the same modules gives the baseline interpreter + library footprint, so
the import's own working set is ``peak - baseline``. The import passes if the peak stays
under ``--budget-mb``.

Usage::

    .venv/bin/python benchmarks/import_memory.py --size-mb 1536 --budget-mb 400

Results are printed and written to benchmarks/results/import_memory.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

_CHILD_IMPORT = r"""
import resource, sys, json, time
sys.path.insert(0, {root!r})
from pathlib import Path
import annotations.imaging.omezarr, annotations.imaging.readers  # same imports in both runs
import ome_zarr.writer, ome_zarr.format
if {convert!r}:
    from annotations.imaging import open_source, write_pyramid
    t = time.perf_counter()
    with open_source(Path({src!r})) as src:
        info = write_pyramid(src, Path({dest!r}), voxel_size_nm=(4.0, 4.0, 4.0))
    print(json.dumps({{"seconds": time.perf_counter() - t, "levels": [list(l.shape) for l in info.levels]}}))
else:
    print(json.dumps({{}}))
"""


def _write_tiff(path: Path, *, n_slices: int, side: int) -> None:
    import tifffile

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    base = (((yy // 37) + (xx // 53)) % 2 * 80 + 90).astype(np.uint8)  # texture that compresses a little
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for z in range(n_slices):
            noise = rng.integers(0, 40, (side, side), dtype=np.uint8)
            tw.write(base + noise, contiguous=True, photometric="minisblack")


def _run_child(src: Path, dest: Path, *, convert: bool) -> tuple[int, dict[str, object]]:
    code = _CHILD_IMPORT.format(root=str(ROOT), src=str(src), dest=str(dest), convert=convert)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited children; the baseline child runs first
    # and is smaller, so a growing value is this child's peak.
    return max(peak_kib, before) * 1024, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1536, help="volume size in MiB (default 1536)")
    parser.add_argument("--side", type=int, default=2048, help="slice width and height (default 2048)")
    parser.add_argument("--budget-mb", type=float, default=400, help="allowed peak RSS in MiB (default 400)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "import_memory.json")
    args = parser.parse_args()

    n_slices = max(1, int(args.size_mb * 2**20 // (args.side * args.side)))
    volume_bytes = n_slices * args.side * args.side
    work = Path(args.workdir or tempfile.mkdtemp(prefix="import_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    src, dest = work / "synthetic.tif", work / "synthetic.ome.zarr"
    try:
        t = time.perf_counter()
        _write_tiff(src, n_slices=n_slices, side=args.side)
        write_s = time.perf_counter() - t
        baseline, _ = _run_child(src, dest, convert=False)
        peak, child = _run_child(src, dest, convert=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mib = 2**20
    result = {
        "volume_shape": [n_slices, args.side, args.side],
        "volume_mib": volume_bytes / mib,
        "budget_mib": args.budget_mb,
        "baseline_rss_mib": baseline / mib,
        "peak_rss_mib": peak / mib,
        "import_working_set_mib": (peak - baseline) / mib,
        "peak_rss_over_volume": peak / volume_bytes,
        "volume_over_budget": volume_bytes / (args.budget_mb * mib),
        "within_budget": peak <= args.budget_mb * mib,
        "convert_seconds": child.get("seconds"),
        "convert_mib_per_s": volume_bytes / mib / float(child.get("seconds") or 1),
        "write_tiff_seconds": write_s,
        "levels": child.get("levels"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"volume {n_slices}x{args.side}x{args.side} uint8 = {result['volume_mib']:.0f} MiB "
        f"({result['volume_over_budget']:.1f}x the {args.budget_mb:.0f} MiB budget)\n"
        f"peak RSS {result['peak_rss_mib']:.0f} MiB (baseline imports {result['baseline_rss_mib']:.0f} MiB, "
        f"import working set {result['import_working_set_mib']:.0f} MiB)\n"
        f"peak RSS / volume = {result['peak_rss_over_volume']:.3f}; "
        f"{'within' if result['within_budget'] else 'OVER'} budget; "
        f"converted in {result['convert_seconds']:.1f} s ({result['convert_mib_per_s']:.0f} MiB/s)\n"
        f"-> {args.out}"
    )
    if not result["within_budget"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
