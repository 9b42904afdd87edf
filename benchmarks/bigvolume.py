"""Generate a big FIB-SEM-like volume with known truth, block by block, without downloads.

The tissue is :class:`benchmarks._bigphantom.BigPhantom`: the phantom of
:mod:`segmentation.core.phantom` (same class values, grey values and texture) at real
physical scale (4 nm voxels by default; cells of 8-15 µm with a nucleus, nucleoli with
fenestrations, mitochondria, endosomes, lysosomes and thin protrusions), computed from a
global seeded object list so that any block is computed alone. Nothing of the volume's
size is ever in memory: peak RSS is set by the block (and, for TIFF, the page tile or a
band of rows), not by the volume.

Outputs (``--format``):

``ome-zarr``
    NGFF 0.4 on zarr v2, as :func:`annotations.imaging.omezarr.write_pyramid` lays it out
    (levels halving Y and X, Z kept, 2x2 mean, Blosc-lz4 bitshuffle, chunks
    (16, 256, 256), the same multiscales/omero/emportal attributes). The truth goes into
    the store as NGFF label layers ``classes`` (uint8) and ``cells`` (instance ids),
    made by :func:`annotations.imaging.omezarr.create_label_layer` and filled block by
    block with 2x2-mode levels. Written to a hidden folder and renamed at the end.
``bigtiff``
    One OME-BigTIFF, ZYX, one page per slice, tiled ``--page-tile`` x ``--page-tile``,
    zlib; tiles come from a generator (one tile-sized block each), so no page is ever
    whole in memory. Truth: ``classes.ome.tif`` and ``cells.ome.tif`` in ``--labels-out``.
``tiff-folder``
    One uncompressed OME-TIFF per slice (``slice_00000.tif`` ...), written as strips of
    ``--block`` Y rows (memory: one band of those rows across X). Truth: folders
    ``classes/`` and ``cells/`` in ``--labels-out``.

TIFF pages are written one after another, so TIFF outputs generate one-slice blocks;
the OME-Zarr output uses ``--block`` as given. Every block of every output equals the
same voxels of any other (the tests check it). A JSON report is written next to the
output (``<out>.json``): shape, voxel size, class values, seed, seconds, peak RSS.

Usage::

    .venv/bin/python benchmarks/bigvolume.py --shape 512 4096 4096 --voxel-nm 4 \\
        --format ome-zarr --out /data/big.ome.zarr
    .venv/bin/python benchmarks/bigvolume.py --shape 64 512 512 --voxel-nm 50 \\
        --format bigtiff --out /tmp/small.ome.tif --labels-out /tmp/small-truth
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import resource
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._bigphantom import CLASS_VALUES, BigPhantom, Block  # noqa: E402

__all__ = ["Report", "blocks", "main", "peak_rss_bytes", "write_bigtiff", "write_ome_zarr", "write_tiff_folder"]

FORMATS = ("tiff-folder", "bigtiff", "ome-zarr")
DEFAULT_BLOCK = (64, 512, 512)
ProgressCallback = Callable[[int, int], None]


@dataclass
class Report:
    """What a generation wrote, saved as ``<out>.json``."""

    format: str
    out: str
    shape: list[int]
    voxel_size_nm: list[float]
    seed: int
    class_values: dict[str, int]
    cells_dtype: str
    block: list[int]
    page_tile: int | None
    labels: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    volume_bytes: int = 0
    voxels_per_second: float = 0.0


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``ru_maxrss``, KiB on Linux) in bytes."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def blocks(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[tuple[int, int], ...]]:
    """Half-open (start, stop) ranges per axis of every block, Z outermost, X innermost."""
    for z0 in range(0, shape[0], block[0]):
        for y0 in range(0, shape[1], block[1]):
            for x0 in range(0, shape[2], block[2]):
                yield ((z0, min(shape[0], z0 + block[0])), (y0, min(shape[1], y0 + block[1])),
                       (x0, min(shape[2], x0 + block[2])))


# --------------------------------------------------------------------------- OME-Zarr


def _datasets(n_levels: int, voxel: Sequence[float]) -> list[dict[str, Any]]:
    """NGFF datasets as omezarr writes them: Y and X scale 2**l, translation (2**l - 1) / 2 voxels."""
    return [
        {
            "path": str(level),
            "coordinateTransformations": [
                {"type": "scale", "scale": [float(voxel[0]), float(voxel[1]) * 2**level, float(voxel[2]) * 2**level]},
                {"type": "translation",
                 "translation": [0.0, float(voxel[1]) * (2**level - 1) / 2, float(voxel[2]) * (2**level - 1) / 2]},
            ],
        }
        for level in range(n_levels)
    ]


def write_ome_zarr(ph: BigPhantom, dest: Path, *, block: Sequence[int] = DEFAULT_BLOCK, labels: bool = True,
                   on_progress: ProgressCallback | None = None) -> dict[str, str]:
    """Write ``ph`` as an OME-Zarr pyramid (and its truth as label layers) block by block.

    Parameters
    ----------
    ph : BigPhantom
    dest : Path
        Folder to create (``*.ome.zarr``); must not exist.
    block : (bz, by, bx)
        Generation block. ``by`` and ``bx`` must be multiples of ``2 ** (levels - 1)``
        (unless they cover the whole axis) so each block's coarser levels are whole
        2x2 means of it.
    labels : bool
        Also write ``labels/classes`` and ``labels/cells``.

    Returns
    -------
    dict
        Label layer name -> path inside the store.
    """
    import zarr
    from numcodecs import Blosc
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    from annotations.imaging.omezarr import (
        DEFAULT_CHUNKS,
        create_label_layer,
        downsample_mean,
        downsample_mode,
        open_label_level,
        pyramid_shapes,
    )

    dest = Path(dest)
    if dest.exists():
        raise ValueError(f"{dest} already exists")
    shapes = pyramid_shapes(ph.shape)
    step = 2 ** (len(shapes) - 1)
    for axis in (1, 2):
        if block[axis] < ph.shape[axis] and block[axis] % step:
            raise ValueError(f"block {tuple(block)}: {'YX'[axis - 1]} size {block[axis]} is not a multiple of {step} "
                             f"({len(shapes)} pyramid levels)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        group = zarr.open_group(str(tmp), mode="w-", zarr_format=2)
        arrays = [group.create_array(str(i), shape=s, chunks=tuple(min(c, n) for c, n in zip(DEFAULT_CHUNKS, s)),
                                     dtype="uint8", fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"},
                                     compressors=Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE))
                  for i, s in enumerate(shapes)]
        write_multiscales_metadata(
            group, _datasets(len(shapes), ph.voxel_nm), fmt=FormatV04(),
            axes=[{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"], name=dest.name,
            metadata={"method": "annotations.imaging.omezarr.downsample_mean (2x2 in YX, Z kept)"},
        )
        label_levels: dict[str, list[Any]] = {}
        if labels:
            create_label_layer(tmp, "classes", dtype="uint8",
                               properties={v: {"name": k} for k, v in CLASS_VALUES.items()})
            create_label_layer(tmp, "cells", dtype=str(ph.cells_dtype))
            for name in ("classes", "cells"):
                label_levels[name] = [open_label_level(tmp, name, i, mode="r+") for i in range(len(shapes))]
        hist = np.zeros(256, np.int64)
        todo = list(blocks(ph.shape, block))
        for n, ((z0, z1), (y0, y1), (x0, x1)) in enumerate(todo):
            b = ph.block((z0, z1), (y0, y1), (x0, x1))
            hist += np.bincount(b.image.ravel(), minlength=256)
            for level, (image, truth) in enumerate(_levels(b, len(shapes), downsample_mean, downsample_mode, labels)):
                f = 2**level
                box = (slice(z0, z1), slice(y0 // f, y0 // f + image.shape[1]), slice(x0 // f, x0 // f + image.shape[2]))
                arrays[level][box] = image
                for name, arr in truth.items():
                    label_levels[name][level][box] = arr
            del b
            if on_progress is not None:
                on_progress(n + 1, len(todo))
        lo, hi = _percentiles(hist, (0.1, 99.9))
        attrs = dict(group.attrs)
        attrs["omero"] = {
            "channels": [{"label": "EM", "color": "FFFFFF", "active": True,
                          "window": {"min": 0.0, "max": 255.0, "start": lo, "end": hi}}],
            "rdefs": {"model": "greyscale"},
        }
        attrs["emportal"] = {"source_dtype": "uint8", "intensity": {"offset": 0.0, "scale": 1.0}, "window": [lo, hi],
                             "source_format": "bigvolume", "source_name": dest.name}
        group.attrs.update(attrs)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"classes": "labels/classes", "cells": "labels/cells"} if labels else {}


def _levels(b: Block, n: int, mean: Callable[[np.ndarray], np.ndarray], mode: Callable[[np.ndarray], np.ndarray],
            labels: bool) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """The block at every pyramid level: image by 2x2 mean, truth by 2x2 mode (as omezarr)."""
    image = b.image
    truth = {"classes": b.classes, "cells": b.cells} if labels else {}
    for level in range(n):
        if level:
            image = mean(image)
            truth = {k: mode(v) for k, v in truth.items()}
        yield image, truth


def _percentiles(hist: np.ndarray, qs: Sequence[float]) -> tuple[float, ...]:
    """Percentiles of uint8 values from their histogram (lower value at each rank)."""
    cum = np.cumsum(hist)
    total = int(cum[-1])
    return tuple(float(np.searchsorted(cum, q / 100.0 * (total - 1), side="right")) for q in qs)


# --------------------------------------------------------------------------- TIFF


def _ome_metadata(ph: BigPhantom) -> dict[str, Any]:
    vz, vy, vx = ph.voxel_nm
    return {"axes": "ZYX", "PhysicalSizeZ": vz, "PhysicalSizeZUnit": "nm", "PhysicalSizeY": vy,
            "PhysicalSizeYUnit": "nm", "PhysicalSizeX": vx, "PhysicalSizeXUnit": "nm"}


_END = object()


def _fan_out(items: Iterator[tuple[Any, ...]], sinks: Sequence[Callable[[Iterator[Any]], None]]) -> None:
    """Feed item ``i`` of every tuple from ``items`` to ``sinks[i]``, each sink running in
    its own thread and reading an iterator (tifffile writes one file per call from an
    iterator). Queues hold two items, so memory stays at a few items per sink."""
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=2) for _ in sinks]
    errors: list[BaseException] = []

    def run(sink: Callable[[Iterator[Any]], None], q: queue.Queue[Any]) -> None:
        ended = [False]

        def items_of() -> Iterator[Any]:
            while (item := q.get()) is not _END:
                yield item
            ended[0] = True

        try:
            sink(items_of())
        except BaseException as exc:
            errors.append(exc)
            while not ended[0]:  # keep draining so the producer never blocks on a dead sink
                ended[0] = q.get() is _END

    threads = [threading.Thread(target=run, args=(s, q), daemon=True) for s, q in zip(sinks, queues)]
    for t in threads:
        t.start()
    try:
        for tup in items:
            for q, item in zip(queues, tup):
                q.put(item)
            if errors:
                raise errors[0]
    finally:
        for q in queues:
            q.put(_END)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def write_bigtiff(ph: BigPhantom, dest: Path, *, tile: int = 512, labels_out: Path | None = None,
                  on_progress: ProgressCallback | None = None) -> dict[str, str]:
    """Write ``ph`` as one tiled, zlib-compressed OME-BigTIFF (one page per slice), tile by tile.

    Each tile is generated as its own block and handed to tifffile through an iterator,
    so memory holds a few tiles. With ``labels_out``, the truth goes to
    ``labels_out/classes.ome.tif`` and ``labels_out/cells.ome.tif`` in the same pass.
    """
    import tifffile

    if tile % 16 or tile <= 0:
        raise ValueError(f"page tile {tile} must be a positive multiple of 16")
    dest = Path(dest)
    Z, Y, X = ph.shape
    outs: dict[str, tuple[Path, DTypeLike, str]] = {"image": (dest, np.uint8, "zlib")}
    if labels_out is not None:
        Path(labels_out).mkdir(parents=True, exist_ok=True)
        outs["classes"] = (Path(labels_out) / "classes.ome.tif", np.uint8, "zlib")
        outs["cells"] = (Path(labels_out) / "cells.ome.tif", ph.cells_dtype, "zlib")
    n_tiles = Z * math.ceil(Y / tile) * math.ceil(X / tile)

    def tiles() -> Iterator[tuple[np.ndarray, ...]]:
        done = 0
        for (z0, z1), (y0, y1), (x0, x1) in blocks(ph.shape, (1, tile, tile)):
            b = ph.block((z0, z1), (y0, y1), (x0, x1))
            yield tuple(getattr(b, k)[0] for k in outs)
            done += 1
            if on_progress is not None:
                on_progress(done, n_tiles)

    def sink(path: Path, dtype: Any, compression: str) -> Callable[[Iterator[Any]], None]:
        def write(it: Iterator[Any]) -> None:
            with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
                tw.write(it, shape=(Z, Y, X), dtype=dtype, tile=(tile, tile), compression=compression,
                         photometric="minisblack", metadata=_ome_metadata(ph), maxworkers=1)
        return write

    _fan_out(tiles(), [sink(*v) for v in outs.values()])
    return {k: str(v[0]) for k, v in outs.items() if k != "image"}


def write_tiff_folder(ph: BigPhantom, dest: Path, *, rows: int = DEFAULT_BLOCK[1], cols: int = DEFAULT_BLOCK[2],
                      labels_out: Path | None = None, on_progress: ProgressCallback | None = None) -> dict[str, str]:
    """Write ``ph`` as a folder of uncompressed single-slice OME-TIFFs, strip by strip.

    Each slice is written as strips of ``rows`` rows; a strip is generated as blocks of
    ``rows`` x ``cols`` voxels, so memory holds one band of ``rows`` x X voxels. With
    ``labels_out``, the truth goes to ``labels_out/classes/`` and ``labels_out/cells/``.
    """
    import tifffile

    dest = Path(dest)
    Z, Y, X = ph.shape
    dirs: dict[str, tuple[Path, np.dtype]] = {"image": (dest, np.dtype(np.uint8))}
    if labels_out is not None:
        dirs["classes"] = (Path(labels_out) / "classes", np.dtype(np.uint8))
        dirs["cells"] = (Path(labels_out) / "cells", ph.cells_dtype)
    for d, _ in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(Z - 1)))

    def bands(z: int) -> Iterator[tuple[bytes, ...]]:
        for y0 in range(0, Y, rows):
            y1 = min(Y, y0 + rows)
            band = {k: np.empty((y1 - y0, X), dt) for k, (_, dt) in dirs.items()}
            for x0 in range(0, X, cols):
                x1 = min(X, x0 + cols)
                b = ph.block((z, z + 1), (y0, y1), (x0, x1))
                for k in dirs:
                    band[k][:, x0:x1] = getattr(b, k)[0]
            yield tuple(band[k].tobytes() for k in dirs)

    def sink(path: Path, dtype: np.dtype) -> Callable[[Iterator[Any]], None]:
        def write(it: Iterator[Any]) -> None:
            with tifffile.TiffWriter(path, ome=True) as tw:
                # One Z plane, so the OME metadata keeps the Z voxel size too.
                tw.write(it, shape=(1, Y, X), dtype=dtype, rowsperstrip=rows, photometric="minisblack",
                         metadata=_ome_metadata(ph))
        return write

    for z in range(Z):
        name = f"slice_{z:0{width}d}.tif"
        _fan_out(bands(z), [sink(d / name, dt) for d, dt in dirs.values()])
        if on_progress is not None:
            on_progress(z + 1, Z)
    return {k: str(v[0]) for k, v in dirs.items() if k != "image"}


# --------------------------------------------------------------------------- command line


def _progress(label: str, every_s: float = 5.0) -> ProgressCallback:
    start = time.perf_counter()
    last = [start]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            print(f"{label}: {done}/{total} ({100.0 * done / total:.1f} %), {now - start:.1f} s, "
                  f"peak RSS {peak_rss_bytes() / 2**20:.0f} MiB", flush=True)
    return report


def generate(shape: Sequence[int], *, out: Path, fmt: str, voxel_nm: Sequence[float] = (4.0, 4.0, 4.0), seed: int = 0,
             block: Sequence[int] = DEFAULT_BLOCK, page_tile: int = 512, labels_out: Path | None = None,
             labels: bool = True, cell_um: float = 11.5, quiet: bool = False) -> Report:
    """Generate a volume to ``out`` in format ``fmt`` and write ``<out>.json``; see the module notes."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    if len(block) != 3 or min(block) < 1:
        raise ValueError(f"block {tuple(block)} must be three positive ints")
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} already exists")
    if fmt == "ome-zarr" and labels_out is not None:
        raise ValueError("ome-zarr keeps its truth inside the store (labels/classes, labels/cells); "
                         "--labels-out is for the TIFF formats (--no-labels skips the truth)")
    ph = BigPhantom(tuple(shape), voxel_nm=tuple(voxel_nm), seed=seed, cell_um=cell_um)
    progress = None if quiet else _progress(fmt)
    start = time.perf_counter()
    if fmt == "ome-zarr":
        written = write_ome_zarr(ph, out, block=block, labels=labels, on_progress=progress)
    elif fmt == "bigtiff":
        written = write_bigtiff(ph, out, tile=page_tile, labels_out=labels_out, on_progress=progress)
    else:
        written = write_tiff_folder(ph, out, rows=block[1], cols=block[2], labels_out=labels_out, on_progress=progress)
    seconds = time.perf_counter() - start
    voxels = int(np.prod(ph.shape, dtype=np.int64))
    report = Report(
        format=fmt, out=str(out), shape=list(ph.shape), voxel_size_nm=list(ph.voxel_nm), seed=ph.seed,
        class_values=dict(CLASS_VALUES), cells_dtype=str(ph.cells_dtype),
        block=[1, page_tile, page_tile] if fmt == "bigtiff" else ([1, *block[1:]] if fmt == "tiff-folder" else list(block)),
        page_tile=page_tile if fmt == "bigtiff" else None, labels=written, seconds=round(seconds, 3),
        peak_rss_bytes=peak_rss_bytes(), volume_bytes=voxels, voxels_per_second=round(voxels / max(seconds, 1e-9)),
    )
    Path(f"{out}.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"), required=True)
    p.add_argument("--voxel-nm", type=float, nargs="+", default=[4.0], help="one (isotropic) or three (Z Y X) sizes in nm")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels-out", type=Path, help="TIFF formats: folder for the truth (classes, cells)")
    p.add_argument("--no-labels", action="store_true", help="ome-zarr: skip the truth label layers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block", type=int, nargs=3, default=list(DEFAULT_BLOCK), metavar=("BZ", "BY", "BX"))
    p.add_argument("--page-tile", type=int, default=512, help="bigtiff: tile side in pixels")
    p.add_argument("--cell-um", type=float, default=11.5, help="spacing of the cell seeds in µm")
    args = p.parse_args(argv)
    if len(args.voxel_nm) not in (1, 3):
        p.error("--voxel-nm takes one or three numbers")
    voxel = args.voxel_nm * 3 if len(args.voxel_nm) == 1 else args.voxel_nm
    try:
        report = generate(args.shape, out=args.out, fmt=args.format, voxel_nm=voxel, seed=args.seed, block=args.block,
                          page_tile=args.page_tile, labels_out=args.labels_out, labels=not args.no_labels,
                          cell_um=args.cell_um)
    except ValueError as exc:
        p.error(str(exc))
    print(f"wrote {report.out}: {' x '.join(map(str, report.shape))} voxels of {report.voxel_size_nm} nm "
          f"({report.volume_bytes / 2**30:.2f} GiB as uint8) in {report.seconds:.1f} s "
          f"({report.voxels_per_second / 1e6:.1f} M voxels/s); peak RSS {report.peak_rss_bytes / 2**20:.0f} MiB; "
          f"report {report.out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
