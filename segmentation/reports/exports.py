"""Label layers as downloadable files, made blockwise so a volume is never in memory whole.

* OME-TIFF: level 0 is read a chunk-deep slab of planes at a time and handed to tifffile
  as a page iterator, zlib-compressed, with the voxel size as OME PhysicalSize (µm), so
  Fiji (Bio-Formats), QuPath and napari open it at the right scale; the file is written to
  an anonymous temporary file (TIFF needs its offsets patched, so it cannot be a pure
  stream) that the response streams. BigTIFF is chosen by tifffile past 4 GB.
* OME-Zarr (zip): the layer's NGFF label group (every pyramid level, the ``image-label``
  colours) is copied file by file into a zip written to a non-seekable sink, each file's
  bytes handed out as soon as it is in; chunks are stored as they are (already
  compressed), so memory holds one chunk file. The zip's root is the zarr group, so
  ``zarr.storage.ZipStore`` reads it directly, and ome-zarr-py through fsspec:
  ``Reader(ZarrLocation(FsspecStore.from_url(f"zip::file://{path}", read_only=True),
  fmt=FormatV04()))`` (its ``parse_url`` does not open zips).
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from annotations.imaging import omezarr
from annotations.models import Volume
from annotations.storage import volume_zarr_path

__all__ = ["files_zip_stream", "layer_tiff_file", "layer_zarr_zip_stream"]


def _pages(level0: object, n_planes: int, step: int) -> Iterator[np.ndarray]:
    for z0 in range(0, n_planes, step):
        slab = np.asarray(level0[z0:z0 + step])  # type: ignore[index]
        yield from slab


def layer_tiff_file(volume: Volume, layer: str) -> BinaryIO:
    """Level 0 of ``layer`` as a calibrated OME-TIFF (one page per z plane), in an unlinked temp file.

    Returns
    -------
    BinaryIO
        Open for reading at offset 0; the file disappears when it is closed.
    """
    level0 = omezarr.open_label_level(volume_zarr_path(volume), layer, 0)
    shape = tuple(int(s) for s in level0.shape)
    fd, path = tempfile.mkstemp(suffix=".tif")
    os.close(fd)
    try:
        z_um, y_um, x_um = (v / 1000 for v in volume.voxel_size_nm)
        tifffile.imwrite(
            path, _pages(level0, shape[0], int(level0.chunks[0])), shape=shape, dtype=level0.dtype,
            photometric="minisblack", compression="zlib", ome=True,
            metadata={"axes": "ZYX", "Name": f"{volume.name} {layer}", "PhysicalSizeZ": z_um,
                      "PhysicalSizeY": y_um, "PhysicalSizeX": x_um})
        handle = open(path, "rb")  # noqa: SIM115 - the response closes it
    finally:
        os.unlink(path)
    return handle


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose bytes are taken out with :meth:`drain`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def layer_zarr_zip_stream(volume: Volume, layer: str) -> Iterator[bytes]:
    """Bytes of a zip holding ``layer``'s NGFF label group (all levels) at its root.

    Raises
    ------
    ValueError
        When the layer does not exist (before the first byte is produced).
    """
    omezarr.open_label_level(volume_zarr_path(volume), layer, 0)  # raises early on an unknown layer
    root = volume_zarr_path(volume) / "labels" / layer
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".partial"))
    return files_zip_stream([(path, path.relative_to(root).as_posix()) for path in files])


def files_zip_stream(files: Sequence[tuple[Path, str]], *, compression: int = zipfile.ZIP_STORED) -> Iterator[bytes]:
    """Bytes of a zip of ``(path, name in the zip)`` files, handed out file by file.

    Memory holds one file at a time; the zip has data descriptors (written to a
    non-seekable stream), which every unzip tool reads.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=compression, allowZip64=True) as archive:
        for path, name in files:
            archive.write(path, arcname=name)
            chunk = sink.drain()
            if chunk:
                yield chunk
    yield sink.drain()
