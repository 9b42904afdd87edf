"""Lazy readers that expose any supported EM source as a ZYX stack of whole slices.

``open_source(path)`` detects the format and returns a :class:`Source`: shape, dtype and
voxel size are known after opening, voxels are only read by ``Source.read(z0, z1)``, one
slab of whole slices at a time, so importing a volume of any size needs memory for one
slab only.

Formats: folder of TIFF slices (natural sort), multipage TIFF (page-wise reads, or a
memory map for contiguous ImageJ hyperstacks), HDF5 datasets, MRC (memory map), Zarr
and OME-Zarr (zarr v2 and v3). N5 is refused (zarr 3 dropped N5 support).

Hostile input is refused with a ``ValueError`` that names the problem, before any
voxel is decoded: unsupported voxel types, extra non-singleton axes (RGB, channels,
time), shapes beyond :class:`Limits`, truncated files (declared data extends past the
end of the file), compressed data declaring far more voxels than its bytes could hold
(decompression bombs), HDF5 external/virtual datasets, and files reached through
symlinks outside ``root``. Decoding errors during ``read`` (corrupt strips/chunks)
become ``ValueError`` too.
"""

from __future__ import annotations

from pathlib import Path

from annotations.imaging.readers.base import ArraySource, Source, VoxelSize, natural_sort_key, unit_to_nm
from annotations.imaging.readers.hdf5 import Hdf5Source
from annotations.imaging.readers.mrc import MrcSource
from annotations.imaging.readers.tiff import TiffFolderSource, TiffSource
from annotations.imaging.readers.zarr_store import ZarrSource
from annotations.imaging.validation import Limits, resolve_inside

__all__ = [
    "Source",
    "ArraySource",
    "TiffSource",
    "TiffFolderSource",
    "Hdf5Source",
    "MrcSource",
    "ZarrSource",
    "Limits",
    "VoxelSize",
    "open_source",
    "resolve_inside",
    "natural_sort_key",
    "unit_to_nm",
]

_TIFF_SUFFIXES = (".tif", ".tiff")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_MRC_SUFFIXES = (".mrc", ".rec", ".st", ".ali", ".map", ".mrcs")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _sniff(path: Path) -> str:
    if path.is_dir():
        if path.suffix.lower() == ".n5" or (path / "attributes.json").exists():
            return "zarr"
        if any((path / n).exists() for n in ("zarr.json", ".zgroup", ".zarray")):
            return "zarr"
        return "tiff-folder"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    if head == _HDF5_MAGIC:
        return "hdf5"
    suffix = path.suffix.lower()
    if suffix in _MRC_SUFFIXES:
        return "mrc"
    if suffix in _TIFF_SUFFIXES:
        return "tiff"
    if suffix in _HDF5_SUFFIXES:
        return "hdf5"
    with open(path, "rb") as fh:
        fh.seek(208)
        if fh.read(4) == b"MAP ":
            return "mrc"
    raise ValueError(f"{path.name}: unknown or unsupported file format (expected TIFF, HDF5, MRC or Zarr)")


def open_source(
    path: Path,
    *,
    dataset: str | None = None,
    limits: Limits = Limits(),
    root: Path | None = None,
) -> Source:
    """Open a supported EM source lazily as a ZYX :class:`Source`.

    Parameters
    ----------
    path : Path
        File (TIFF, HDF5, MRC) or folder (TIFF slices, Zarr/OME-Zarr). Resolve user
        input with :func:`resolve_inside` first.
    dataset : str, optional
        HDF5 dataset or Zarr array path inside the container; required when the
        container holds several arrays (the error lists them). For a TIFF, the series
        number as a string (default ``"0"``).
    limits : Limits, optional
        Size limits; the defaults suit large FIB-SEM volumes.
    root : Path, optional
        Data root: files of a folder source (TIFF slices, Zarr chunks) that are
        symlinks leading out of it are refused.

    Returns
    -------
    Source
        Use as a context manager, or call ``close()``.

    Raises
    ------
    ValueError
        Unsupported or broken input, with a message naming the problem.

    Examples
    --------
    >>> with open_source(Path("stack.tif")) as src:  # doctest: +SKIP
    ...     first = src.read(0, 1)  # (1, Y, X)
    """
    path = Path(path)
    if root is not None:
        path = resolve_inside(Path(root), str(path))
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    try:
        return _open(path, dataset=dataset, limits=limits, root=root)
    except ValueError:
        raise
    except Exception as exc:  # parsers of hostile files raise anything; report one kind
        raise ValueError(f"{path.name}: cannot open ({type(exc).__name__}: {exc})") from exc


def _open(path: Path, *, dataset: str | None, limits: Limits, root: Path | None) -> Source:
    kind = _sniff(path)
    if kind == "tiff":
        try:
            series = int(dataset) if dataset not in (None, "") else 0
        except ValueError:
            raise ValueError(f"TIFF series must be a number, got {dataset!r}") from None
        return TiffSource(path, series=series, limits=limits)
    if kind == "tiff-folder":
        return TiffFolderSource(path, limits=limits, root=root)
    if kind == "hdf5":
        return Hdf5Source(path, dataset=dataset, limits=limits)
    if kind == "mrc":
        return MrcSource(path, limits=limits)
    return ZarrSource(path, dataset=dataset, limits=limits, root=root)
