"""Subcommand ``cells`` of ``python -m segmentation.cli``: 3D cell instances.

``python -m segmentation.cli cells --image IMG.tif --interior INT.tif --keys KEYS.tif
--out CELLS.tif [--flow dis|farneback] [--method fusion|flow|interior]``

Volumes are multipage TIFFs (ZYX) or zarr arrays (``.zarr``). The interior may be a
mask, a 0/255 image or a probability map; the keys hold cell ids painted on a few
slices (0 elsewhere). The output holds uint32 cell ids (uint16 when they fit).
A one-line JSON summary goes to stdout; progress to stderr unless ``--quiet``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.commands.training import read_volume
from segmentation.core.cells import CELL_METHODS, segment_cells
from segmentation.core.propagation import FLOW_METHODS

__all__ = ["register", "run_cells"]


def _write(path: str, array: np.ndarray) -> None:
    if path.endswith(".zarr"):
        import zarr

        chunks = tuple(min(s, c) for s, c in zip(array.shape, (8, 512, 512)))
        z = zarr.create_array(path, shape=array.shape, dtype=array.dtype, chunks=chunks, overwrite=True)
        z[...] = array
        return
    import tifffile

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array, compression="zlib", photometric="minisblack")


def _parse_keys(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--key-slices {text!r} must be comma-separated slice numbers") from None


def run_cells(args: argparse.Namespace) -> int:
    """Run the ``cells`` subcommand; returns the exit status."""
    t0 = time.perf_counter()
    image = read_volume(args.image, lazy=True)
    interior = np.asarray(read_volume(args.interior))
    keys = read_volume(args.keys, lazy=True)
    for name, vol in (("interior", interior), ("keys", keys)):
        if tuple(vol.shape) != tuple(image.shape):
            raise ValueError(f"--{name} shape {tuple(vol.shape)} differs from --image shape {tuple(image.shape)}")

    last = [-1.0]

    def progress(f: float) -> None:
        if not args.quiet and (f >= last[0] + 0.05 or f >= 1.0):
            last[0] = f
            print(f"progress {f:.2f}", file=sys.stderr, flush=True)

    result = segment_cells(
        image,
        interior,
        keys,
        method=args.method,
        flow=args.flow,
        key_indices=_parse_keys(args.key_slices),
        threshold=args.threshold,
        on_progress=progress,
    )
    cells = result.cells
    if cells.size and int(cells.max()) < 2**16:
        cells = cells.astype(np.uint16)
    _write(args.out, cells)
    ids = np.unique(cells)
    summary: dict[str, Any] = {
        "out": args.out,
        "method": result.method,
        "flow": args.flow if args.method != "interior" else None,
        "cells": int((ids > 0).sum()),
        "tracked_regions": result.tracked_regions,
        "unresolved_regions": [
            {"z": u.z, "y": round(u.centroid[0], 1), "x": round(u.centroid[1], 1), "area": u.area}
            for u in result.unresolved
        ],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(summary))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``cells`` subcommand to ``python -m segmentation.cli``."""
    p = subparsers.add_parser(
        "cells",
        help="3D cell instances from an interior mask and key-slice labels (fusion, flow or interior)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", required=True, help="EM volume (TIFF or .zarr), ZYX")
    p.add_argument("--interior", required=True, help="cell-interior mask or probability (TIFF or .zarr), ZYX")
    p.add_argument("--keys", required=True, help="cell ids painted on key slices, 0 elsewhere (TIFF or .zarr)")
    p.add_argument("--out", required=True, help="output cell ids (TIFF, or .zarr)")
    p.add_argument("--flow", choices=FLOW_METHODS, default="dis", help="optical flow (default dis)")
    p.add_argument("--method", choices=CELL_METHODS, default="fusion", help="default fusion")
    p.add_argument("--key-slices", default=None, help="key slice numbers, e.g. 0,20,40 (default: slices holding ids)")
    p.add_argument("--threshold", type=float, default=0.5, help="cut for a probability interior (default 0.5)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--progress", action="store_true", help="progress on stderr (the default; kept for old scripts)")
    p.set_defaults(func=run_cells)
