"""``features``: per-cell feature report from an image, a class label volume and cell instances.

    python -m segmentation.cli features --image IMG.tif --labels LAB.tif --cells CELLS.tif \\
        --voxel-size-nm Z Y X --out REPORT.csv [--classes nucleus=1,...]

The report format follows the suffix of ``--out``: ``.csv``, ``.xlsx`` (with a sheet that
explains every column) or ``.parquet``. ``--meshes DIR`` also writes one GLB scene per
cell (cell and organelle meshes, the paper's colours).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.core.classes import parse_classes
from segmentation.core.features import (
    DEFAULT_CLASSES,
    DEFAULT_CLOSING_RADIUS_NM,
    cell_features,
    describe_columns,
    write_report,
)
from segmentation.core.features.report import REPORT_SUFFIXES

__all__ = ["register", "run", "open_volume"]


def open_volume(path: str | Path) -> Any:
    """A lazily read ZYX array for a TIFF stack, a Zarr array or an ``.npy`` file.

    TIFFs that are stored uncompressed are memory-mapped, so a cell box is all that is
    read; compressed TIFFs are read whole. Zarr arrays and ``.npy`` files are never read
    whole.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        On another suffix or an array that is not 3D.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    array: Any
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            array = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or tiled: not memory-mappable
            array = tifffile.imread(path)
    elif suffix == ".zarr":
        import zarr

        array = zarr.open_array(str(path), mode="r")
    elif suffix == ".npy":
        array = np.load(path, mmap_mode="r")
    else:
        raise ValueError(f"volume {str(path)!r} must be .tif/.tiff, .zarr or .npy")
    if array.ndim == 2:
        array = np.asarray(array)[None]
    if array.ndim != 3:
        raise ValueError(f"volume {str(path)!r} has shape {array.shape}; expected ZYX")
    return array


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 20) == 0:
        print(f"features: {done}/{total} cells", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Compute the report (and meshes) for parsed arguments; returns the exit status."""
    out = Path(args.out)
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise ValueError(f"--out {str(out)!r} must end in one of {', '.join(REPORT_SUFFIXES)}")
    classes = parse_classes(args.classes) if args.classes else dict(DEFAULT_CLASSES)
    image, labels, cells = (open_volume(p) for p in (args.image, args.labels, args.cells))
    table = cell_features(
        image,
        labels,
        cells,
        voxel_size_nm=tuple(args.voxel_size_nm),
        classes=classes,
        fenestration_closing_nm=args.fenestration_closing_nm,
        glcm_levels=args.glcm_levels,
        on_progress=None if args.quiet else _progress,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_report(table, out, columns=describe_columns(classes))
    if args.meshes:
        _write_meshes(Path(args.meshes), labels, cells, table["cell_id"].tolist(), classes, tuple(args.voxel_size_nm))
    if not args.quiet:
        print(f"features: {len(table)} cells, {table.shape[1]} columns -> {out}", file=sys.stderr)
    return 0


def _write_meshes(
    folder: Path, labels: Any, cells: Any, cell_ids: list[int], classes: dict[str, int], spacing: tuple[float, ...]
) -> None:
    from segmentation.core.features import cell_bounding_boxes
    from segmentation.core.meshes import cell_meshes, scene_glb

    folder.mkdir(parents=True, exist_ok=True)
    boxes = cell_bounding_boxes(cells)
    for cid in cell_ids:
        meshes = cell_meshes(labels, cells, int(cid), voxel_size_nm=spacing, classes=classes, box=boxes[int(cid)])
        (folder / f"cell_{int(cid)}.glb").write_bytes(scene_glb(meshes))


def register(subparsers: Any) -> None:
    """Add the ``features`` subcommand to the CLI's subparsers."""
    p = subparsers.add_parser(
        "features",
        help="per-cell organelle volumes, nucleus shape, nucleolar fenestration and texture",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", required=True, help="EM volume (.tif, .zarr or .npy), ZYX")
    p.add_argument("--labels", required=True, help="class label volume: innermost class value per voxel")
    p.add_argument("--cells", required=True, help="cell instance ids, 0 outside cells")
    p.add_argument("--voxel-size-nm", required=True, nargs=3, type=float, metavar=("Z", "Y", "X"),
                   help="voxel size in nanometres, Z Y X")
    p.add_argument("--out", required=True, help="report path: .csv, .xlsx or .parquet")
    p.add_argument(
        "--classes",
        default=None,
        help="class values, e.g. nucleus=1,nucleolus=2 (default: the paper's "
        + ",".join(f"{k}={v}" for k, v in DEFAULT_CLASSES.items())
        + ")",
    )
    p.add_argument(
        "--fenestration-closing-nm",
        type=float,
        default=DEFAULT_CLOSING_RADIUS_NM,
        help="closing radius (nm) of the nucleolar envelope before hole filling; 0 counts only "
        f"fully enclosed cavities (default {DEFAULT_CLOSING_RADIUS_NM:g}; docs/FEATURES.md)",
    )
    p.add_argument("--glcm-levels", type=int, default=32, help="grey levels of the GLCM (default 32)")
    p.add_argument("--meshes", default=None, metavar="DIR", help="also write cell_<id>.glb meshes here")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)
