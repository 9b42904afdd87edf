"""Peak memory and speed of importing volumes from 1 to 8 GiB and one huge page.

For each case a zlib-compressed, 512²-tiled BigTIFF is written tile by tile (so writing
needs no memory either), then two fresh subprocesses run on it:

- *import*: ``open_source`` + ``write_pyramid`` into an OME-Zarr pyramid, after a small
  warm-up import so the figure is what the volume adds (``growth``), not the libraries;
- *tifffile alone*: decodes every tile of the same file with tifffile and nothing else,
  the baseline the import's throughput is a ratio of.

Cases: volumes of ``--sizes-gib`` built of ``--page``² pages, and one volume that is a
single page of ``--big-page-gib``. The import passes when every growth stays under
``--budget-mb`` (flat in the volume size), which is what lets a 60 GB biopsy import on a
16 GB workstation.

Usage::

    .venv/bin/python benchmarks/import_memory.py                      # 1, 2, 4, 8 GiB and one 4 GiB page
    .venv/bin/python benchmarks/import_memory.py --sizes-gib 0.25 --big-page-gib 0.25   # a quick look
    .venv/bin/python benchmarks/import_memory.py --sizes-gib 1 --big-page-gib 0 --decode-threads 1 2   # TIFF tiles decoded on 1, 2 threads

Results are printed and written to benchmarks/results/import_memory.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TILE = 512

_CHILD_IMPORT = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, {root!r})
from annotations.imaging import ArraySource, open_source, write_pyramid
from annotations.imaging.readers import tiff
tiff.DECODE_THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else tiff.DECODE_THREADS
out = Path({out!r})
write_pyramid(ArraySource(np.random.default_rng(0).integers(0, 200, (2, 1500, 1500)).astype(np.uint8)),
              out / "warm.ome.zarr", voxel_size_nm=(4, 4, 4))
with open_source(Path({src!r})) as src:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t, cpu = time.perf_counter(), time.process_time()
    info = write_pyramid(src, out / "volume.ome.zarr", voxel_size_nm=(4, 4, 4))
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "cpu_s": cpu, "peak_kib": peak, "before_kib": before,
                  "levels": len(info.levels)}}))
"""

_CHILD_TIFFFILE = r"""
import json, resource, time, tifffile
t = time.perf_counter()
n = 0
with tifffile.TiffFile({src!r}) as tif:
    for page in tif.pages:
        for segment, _, _ in page.segments(maxworkers=1):
            n += segment.size
print(json.dumps({{"seconds": time.perf_counter() - t, "voxels": n,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def _tiles(pages: int, side: int) -> Iterator[np.ndarray]:
    """EM-like low-entropy tiles (zlib packs them about 3x), different per tile."""
    base = np.random.default_rng(0).integers(0, 4, (TILE, TILE), dtype=np.uint8) * 50
    for p in range(pages):
        for i in range((side // TILE) ** 2):
            yield base + np.uint8((i * 7 + p) % 50)


def write_tiled_tiff(path: Path, *, pages: int, side: int) -> None:
    import tifffile

    tifffile.imwrite(path, _tiles(pages, side), shape=(pages, side, side), dtype=np.uint8, tile=(TILE, TILE),
                     compression="zlib", compressionargs={"level": 1}, bigtiff=True, photometric="minisblack")


def _child(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_case(work: Path, *, pages: int, side: int, decode_threads: tuple[int, ...] = ()) -> dict[str, object]:
    """One volume: tifffile alone, then an import per count of TIFF decode threads, or one with
    the reader's own (the row's import figures are the last; ``by_decode_threads`` holds each)."""
    src, out = work / "volume.tif", work / "out"
    try:
        t = time.perf_counter()
        write_tiled_tiff(src, pages=pages, side=side)
        write_s = time.perf_counter() - t
        baseline = _child(_CHILD_TIFFFILE.format(src=str(src)))
        by_threads: dict[str, dict[str, float]] = {}
        for threads in decode_threads or (None,):
            out.mkdir()
            by_threads[str(threads or "default")] = _child(
                _CHILD_IMPORT.format(root=str(ROOT), out=str(out), src=str(src)), *([str(threads)] if threads else []))
            shutil.rmtree(out, ignore_errors=True)
        imported = list(by_threads.values())[-1]
        file_bytes = src.stat().st_size
    finally:
        shutil.rmtree(out, ignore_errors=True)
        src.unlink(missing_ok=True)
    mib = 2**20
    volume = pages * side * side
    return {
        "by_decode_threads": {n: {"import_s": r["seconds"], "import_cpu_s": r["cpu_s"],
                                       "import_over_tifffile": baseline["seconds"] / r["seconds"]}
                              for n, r in by_threads.items()},
        "shape": [pages, side, side],
        "volume_gib": volume / 2**30,
        "file_mib": file_bytes / mib,
        "write_tiff_s": write_s,
        "peak_rss_mib": imported["peak_kib"] / 1024,
        "growth_mib": (imported["peak_kib"] - imported["before_kib"]) / 1024,
        "import_s": imported["seconds"],
        "import_mib_per_s": volume / mib / imported["seconds"],
        "tifffile_s": baseline["seconds"],
        "tifffile_mib_per_s": volume / mib / baseline["seconds"],
        "import_over_tifffile": baseline["seconds"] / imported["seconds"],
        "levels": imported["levels"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--page", type=int, default=8192, help="page side of the sized volumes (default 8192)")
    parser.add_argument("--big-page-gib", type=float, default=4.0, help="one page of this size (0: skip)")
    parser.add_argument("--budget-mb", type=float, default=200, help="allowed growth over the warm interpreter")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "import_memory.json")
    parser.add_argument("--decode-threads", type=int, nargs="+", default=[],
                        help="import once per count of TIFF decode threads, e.g. 1 2 (the row's figures: the last; "
                             "default: once, with the reader's DECODE_THREADS)")
    args = parser.parse_args()

    page = args.page // TILE * TILE
    cases = [(max(1, round(g * 2**30 / page**2)), page) for g in args.sizes_gib]
    if args.big_page_gib > 0:
        cases.append((1, int(math.sqrt(args.big_page_gib * 2**30)) // TILE * TILE))
    rows = []
    for pages, side in cases:
        work = Path(tempfile.mkdtemp(prefix="import_memory_", dir=args.workdir))
        try:
            rows.append(run_case(work, pages=pages, side=side, decode_threads=tuple(args.decode_threads)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        r = rows[-1]
        print(f"{pages:4d} x {side}² ({r['volume_gib']:.2f} GiB, {r['file_mib']:.0f} MiB on disk): "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB, growth {r['growth_mib']:.0f} MiB; "
              f"import {r['import_s']:.1f} s ({r['import_mib_per_s']:.0f} MiB/s), "
              f"tifffile alone {r['tifffile_s']:.1f} s ({r['tifffile_mib_per_s']:.0f} MiB/s): "
              f"ratio {r['import_over_tifffile']:.2f}", flush=True)
        if len(args.decode_threads) > 1:
            print("    by TIFF decode threads: " + ", ".join(
                f"{n}: {v['import_s']:.1f} s ({v['import_cpu_s']:.1f} s CPU), ratio {v['import_over_tifffile']:.2f}"
                for n, v in cast(dict[str, dict[str, float]], r["by_decode_threads"]).items()), flush=True)
    growth = [float(r["growth_mib"]) for r in rows]
    result = {
        "cases": rows,
        "budget_mib": args.budget_mb,
        "max_growth_mib": max(growth),
        "growth_largest_over_smallest": growth[-1] / growth[0] if growth[0] else None,
        "within_budget": max(growth) <= args.budget_mb,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"max growth {max(growth):.0f} MiB ({'within' if result['within_budget'] else 'OVER'} "
          f"the {args.budget_mb:.0f} MiB budget) -> {args.out}")
    if not result["within_budget"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
