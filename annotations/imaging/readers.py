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

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotations.imaging.validation import (
    Limits,
    check_declared_size,
    check_dtype,
    check_shape,
    resolve_inside,
)

__all__ = [
    "Source",
    "ArraySource",
    "Limits",
    "open_source",
    "resolve_inside",
    "natural_sort_key",
    "unit_to_nm",
]

VoxelSize = tuple[float, float, float]

_TIFF_SUFFIXES = (".tif", ".tiff")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_MRC_SUFFIXES = (".mrc", ".rec", ".st", ".ali", ".map", ".mrcs")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class Source:
    """A ZYX volume opened lazily.

    Attributes
    ----------
    path : Path
        The file or folder opened.
    format : str
        One of ``"tiff-folder"``, ``"tiff"``, ``"hdf5"``, ``"mrc"``, ``"zarr"``,
        ``"ome-zarr"``, ``"array"``.
    shape : tuple[int, int, int]
        ZYX shape; a 2D image has Z = 1.
    dtype : numpy.dtype
        Native-endian voxel type, one of uint8, uint16, int16, float32.
    voxel_size_nm : tuple[float, float, float] or None
        ZYX voxel size in nanometres when the metadata states all three, else None.
    metadata : dict
        JSON-able facts found in the file (e.g. a partial ``pixel_size_yx_nm``, the
        HDF5 dataset name), for display and for pre-filling a voxel size form.
    """

    format: str = "unknown"

    def __init__(
        self,
        path: Path,
        shape: tuple[int, int, int],
        dtype: np.dtype,
        voxel_size_nm: VoxelSize | None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.shape = shape
        self.dtype = np.dtype(dtype).newbyteorder("=")
        self.voxel_size_nm = voxel_size_nm
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._closed = False

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the whole volume in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, z0: int, z1: int) -> np.ndarray:
        """Read slices ``z0 <= z < z1``.

        Returns
        -------
        numpy.ndarray
            Shape ``(z1 - z0, Y, X)``, dtype ``self.dtype`` (native byte order), a new
            array the caller may modify.

        Raises
        ------
        IndexError
            If the range is empty or outside ``[0, Z]``.
        ValueError
            If the stored data cannot be decoded (corrupt or truncated file).
        """
        if self._closed:
            raise ValueError(f"source {self.path} is closed")
        z0, z1 = int(z0), int(z1)
        if not 0 <= z0 < z1 <= self.shape[0]:
            raise IndexError(f"slice range [{z0}, {z1}) is outside [0, {self.shape[0]})")
        try:
            data = self._read(z0, z1)
        except Exception as exc:  # decoders raise anything on corrupt data
            raise ValueError(
                f"{self.path.name}: cannot decode slices {z0}..{z1 - 1} "
                f"(corrupt or truncated file): {exc}"
            ) from exc
        data = np.asarray(data)
        expected = (z1 - z0, *self.shape[1:])
        if data.size != int(np.prod(expected)):
            raise ValueError(
                f"{self.path.name}: slices {z0}..{z1 - 1} decoded to shape {data.shape}, "
                f"expected {expected} (corrupt file)"
            )
        return np.ascontiguousarray(data.reshape(expected), dtype=self.dtype)

    def _read(self, z0: int, z1: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles; further reads raise ``ValueError``."""
        self._closed = True

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.format} {self.path.name!r} shape={self.shape} "
            f"dtype={self.dtype} voxel_size_nm={self.voxel_size_nm}>"
        )


class ArraySource(Source):
    """Wrap an in-memory or lazy array (numpy, zarr, h5py) as a :class:`Source`.

    Parameters
    ----------
    array : array-like
        ZYX (or YX) array with a supported dtype; it is not copied or modified.
    voxel_size_nm : tuple of 3 floats, optional
        ZYX voxel size in nm.
    limits : Limits, optional
        Size limits to enforce.

    Examples
    --------
    >>> src = ArraySource(np.zeros((4, 8, 8), np.uint8), voxel_size_nm=(4.0, 4.0, 4.0))
    >>> src.read(0, 2).shape
    (2, 8, 8)
    """

    format = "array"

    def __init__(
        self,
        array: Any,
        *,
        voxel_size_nm: Sequence[float] | None = None,
        limits: Limits = Limits(),
        name: str = "array",
    ) -> None:
        shape = tuple(int(s) for s in array.shape)
        if len(shape) == 2:
            shape = (1, *shape)
        elif len(shape) != 3:
            raise ValueError(f"array must be ZYX or YX, got shape {array.shape}")
        dtype = check_dtype(array.dtype, what=name)
        zyx = check_shape(shape, limits, what=name)
        self._array = array
        super().__init__(Path(name), zyx, dtype, _checked_voxel_size(voxel_size_nm, what=name))

    def _read(self, z0: int, z1: int) -> np.ndarray:
        if len(self._array.shape) == 2:
            return np.asarray(self._array)[None]
        return np.array(self._array[z0:z1])


# --------------------------------------------------------------------------- helpers


def natural_sort_key(name: str) -> list[Any]:
    """Key that sorts ``slice_2`` before ``slice_10`` (digits compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


_UNIT_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "um": 1e3,
    "µm": 1e3,
    "μm": 1e3,
    "\\u00b5m": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "micrometre": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "cm": 1e7,
    "m": 1e9,
    "meter": 1e9,
    "pm": 1e-3,
    "picometer": 1e-3,
    "å": 0.1,
    "a": 0.1,
    "angstrom": 0.1,
    "ångström": 0.1,
}


def unit_to_nm(unit: str) -> float | None:
    """Nanometres per ``unit`` (``"µm"`` -> 1000.0), or None for an unknown unit."""
    return _UNIT_NM.get(str(unit).strip().lower())


def _checked_voxel_size(value: Sequence[float] | None, *, what: str) -> VoxelSize | None:
    if value is None:
        return None
    vs = tuple(float(v) for v in value)
    if len(vs) != 3 or not all(np.isfinite(v) and v > 0 for v in vs):
        raise ValueError(f"{what}: voxel size must be 3 positive finite numbers (nm), got {value!r}")
    return vs  # type: ignore[return-value]


def _plausible_voxel_size(value: Sequence[float]) -> VoxelSize | None:
    """Voxel size if all entries are finite and positive, else None (missing metadata)."""
    try:
        vs = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vs) == 3 and all(np.isfinite(v) and v > 0 for v in vs):
        return vs  # type: ignore[return-value]
    return None


def _zyx_from_axes(shape: Sequence[int], axes: str, *, what: str) -> tuple[tuple[int, int, int], tuple[Any, ...], int]:
    """Map a shape with named axes to ZYX.

    Returns the ZYX shape, an index template (``slice`` for the Z/Y/X axes, 0 for
    singleton extra axes) and the position of the Z axis in the template (-1 if the
    source has no Z axis and Z = 1).
    """
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(f"{what}: axes {axes!r} do not match shape {tuple(shape)}")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"{what}: axes {axes!r} lack Y and X")
    for ax, size in zip(axes, shape):
        if ax in "SC" and size != 1:
            raise ValueError(
                f"{what}: {size} {'samples (RGB)' if ax == 'S' else 'channels'} per voxel; "
                "only single-channel grayscale volumes are supported"
            )
    extra = [(i, ax, s) for i, (ax, s) in enumerate(zip(axes, shape)) if ax not in "YXSC" and s != 1]
    if len(extra) > 1:
        desc = ", ".join(f"{ax}={s}" for _, ax, s in extra)
        raise ValueError(f"{what}: more than one stack axis ({desc}); only 3D ZYX volumes are supported")
    index: list[Any] = [0] * len(shape)
    index[axes.index("Y")] = slice(None)
    index[axes.index("X")] = slice(None)
    zpos = -1
    nz = 1
    if extra:
        zpos, _, nz = extra[0]
        index[zpos] = slice(None)
    elif "Z" in axes:
        zpos = axes.index("Z")
        index[zpos] = slice(None)
    return (nz, int(shape[axes.index("Y")]), int(shape[axes.index("X")])), tuple(index), zpos


def _zyx_from_shape(shape: Sequence[int], *, what: str) -> tuple[tuple[int, int, int], tuple[Any, ...], int]:
    """Map a shape without axis names to ZYX: singleton axes are dropped, the last two
    non-singleton axes are YX and the one before them Z."""
    keep = [i for i, s in enumerate(shape) if s != 1]
    if len(keep) > 3:
        raise ValueError(
            f"{what}: shape {tuple(shape)} has more than 3 non-singleton axes; "
            "only 3D ZYX volumes are supported"
        )
    if len(shape) < 2:
        raise ValueError(f"{what}: shape {tuple(shape)} is not an image")
    if len(keep) < 2:  # a 1-pixel-wide image: pad with the trailing singleton axes
        keep = sorted((keep + [i for i in reversed(range(len(shape))) if i not in keep])[:2])
    index: list[Any] = [0] * len(shape)
    for i in keep:
        index[i] = slice(None)
    if len(keep) == 3:
        zpos = keep[0]
        zyx = (int(shape[keep[0]]), int(shape[keep[1]]), int(shape[keep[2]]))
    else:
        zpos = -1
        zyx = (1, int(shape[keep[0]]), int(shape[keep[1]]))
    return zyx, tuple(index), zpos


def _read_template(arr: Any, index: tuple[Any, ...], zpos: int, z0: int, z1: int) -> np.ndarray:
    if zpos < 0:
        return np.asarray(arr[index])[None]
    idx = list(index)
    idx[zpos] = slice(z0, z1)
    return np.asarray(arr[tuple(idx)])


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _check_tree_inside(path: Path, root: Path | None) -> None:
    """Refuse folders containing symlinks that lead outside ``root``."""
    if root is None:
        return
    real_root = Path(root).resolve()
    for dirpath, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            p = Path(dirpath) / name
            if p.is_symlink() and not p.resolve().is_relative_to(real_root):
                raise ValueError(f"{p.relative_to(path)} in {path.name} links outside the data root")


# --------------------------------------------------------------------------- TIFF


def _tiff_voxel_size(tif: Any, *, nz: int) -> tuple[VoxelSize | None, dict[str, Any]]:
    """Voxel size from OME or ImageJ metadata (nm, ZYX) and partial facts."""
    facts: dict[str, Any] = {}
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            pixels = next(el for el in root.iter() if el.tag.endswith("Pixels"))
            sizes = []
            for ax in "ZYX":
                value = pixels.get(f"PhysicalSize{ax}")
                factor = unit_to_nm(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
                sizes.append(float(value) * factor if value is not None and factor else None)
            if sizes[1] and sizes[2]:
                facts["pixel_size_yx_nm"] = [sizes[1], sizes[2]]
                if sizes[0] is None and nz == 1:
                    sizes[0] = sizes[2]
                if sizes[0]:
                    return _plausible_voxel_size(sizes), facts
        except (ET.ParseError, StopIteration, ValueError, TypeError):
            facts["metadata_warning"] = "unreadable OME-XML"
    page = tif.pages.first
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij is not None:
        factor = unit_to_nm(ij.get("unit", "")) if ij.get("unit") else None
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        if factor and xres is not None and yres is not None:
            try:
                px = factor * xres.value[1] / xres.value[0]
                py = factor * yres.value[1] / yres.value[0]
            except (ZeroDivisionError, TypeError, IndexError):
                return None, facts
            facts["pixel_size_yx_nm"] = [py, px]
            spacing = ij.get("spacing")
            pz = float(spacing) * factor if spacing else (px if nz == 1 else None)
            if pz:
                return _plausible_voxel_size((pz, py, px)), facts
    if tif.is_fei and tif.fei_metadata:
        scan = tif.fei_metadata.get("Scan", {})
        if "PixelWidth" in scan and "PixelHeight" in scan:
            facts["pixel_size_yx_nm"] = [float(scan["PixelHeight"]) * 1e9, float(scan["PixelWidth"]) * 1e9]
    if tif.is_sem and tif.sem_metadata and "ap_pixel_size" in tif.sem_metadata:
        entry = tif.sem_metadata["ap_pixel_size"]
        factor = unit_to_nm(entry[2]) if len(entry) > 2 else None
        if factor:
            facts["pixel_size_yx_nm"] = [float(entry[1]) * factor] * 2
    return None, facts


def _tiff_page_extent(page: Any) -> tuple[int, int, bool]:
    """(end offset of the page data, bytes stored, compressed?) for one TIFF page."""
    offsets = page.dataoffsets
    counts = page.databytecounts
    if not offsets or not counts:
        raise ValueError("page has no image data")
    end = max(int(o) + int(c) for o, c in zip(offsets, counts))
    return end, int(sum(int(c) for c in counts)), int(page.compression) != 1


class TiffSource(Source):
    """Multipage TIFF (also OME-TIFF and ImageJ hyperstacks); reads page by page."""

    format = "tiff"

    def __init__(self, path: Path, *, series: int = 0, limits: Limits = Limits()) -> None:
        import tifffile

        what = path.name
        file_size = path.stat().st_size
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises many types for broken headers
            raise ValueError(f"{what}: not a readable TIFF file: {exc}") from exc
        self._tif = tif
        try:
            self._setup(tif, series=series, limits=limits, file_size=file_size, what=what)
        except Exception:
            tif.close()
            raise

    def _setup(self, tif: Any, *, series: int, limits: Limits, file_size: int, what: str) -> None:
        if not tif.series:
            raise ValueError(f"{what}: TIFF holds no image")
        if not 0 <= series < len(tif.series):
            raise ValueError(f"{what}: TIFF series {series} does not exist (it has {len(tif.series)})")
        s = tif.series[series]
        zyx, index, zpos = _zyx_from_axes(s.shape, s.axes, what=what)
        check_shape(zyx, limits, what=what)
        dtype = check_dtype(s.dtype, what=what)
        pages = list(s.pages)
        self._series = series
        self._index, self._zpos = index, zpos
        self._memmap: np.ndarray | None = None
        page_shape = tuple(int(v) for v in pages[0].shape) if pages and pages[0] is not None else ()
        squeezed = tuple(v for v in page_shape if v != 1)
        self._pagewise = len(pages) == zyx[0] and all(p is not None for p in pages) and squeezed == zyx[1:]
        if self._pagewise:
            end = stored = 0
            compressed = False
            for p in pages:
                e, b, c = _tiff_page_extent(p)
                end, stored, compressed = max(end, e), stored + b, compressed or c
            if end > file_size:
                raise ValueError(
                    f"{what}: file is truncated: image data extends to byte {end} "
                    f"but the file has {file_size} bytes"
                )
            check_declared_size(zyx, dtype, stored, limits, compressed=compressed, what=what)
        elif s.dataoffset is not None:
            # Contiguous uncompressed data (e.g. ImageJ hyperstacks > 4 GB): memory map.
            declared = int(np.prod(s.shape, dtype=np.int64)) * dtype.itemsize
            check_declared_size(zyx, dtype, file_size - int(s.dataoffset), limits, compressed=False, what=what)
            file_dtype = np.dtype(s.dtype).newbyteorder(tif.byteorder)
            mm = np.memmap(tif.filehandle.path, dtype=file_dtype, mode="r", offset=int(s.dataoffset), shape=tuple(s.shape))
            assert mm.nbytes == declared
            self._memmap = mm
        else:
            raise ValueError(
                f"{what}: unsupported TIFF layout (series {s.axes} {s.shape} stored in "
                f"{len(pages)} pages of shape {page_shape}); save it as one page per slice"
            )
        voxel_size, facts = _tiff_voxel_size(tif, nz=zyx[0])
        facts.update(axes=s.axes, pages=len(pages), compression=str(pages[0].compression.name) if pages else "")
        super().__init__(Path(tif.filehandle.path), zyx, dtype, voxel_size, facts)

    def _read(self, z0: int, z1: int) -> np.ndarray:
        if self._memmap is not None:
            return np.array(_read_template(self._memmap, self._index, self._zpos, z0, z1))
        out = self._tif.asarray(key=list(range(z0, z1)), series=self._series, maxworkers=1)
        return out

    def close(self) -> None:
        self._memmap = None
        self._tif.close()
        super().close()


class TiffFolderSource(Source):
    """A folder of single-slice TIFF files, one per Z, in natural-sort order."""

    format = "tiff-folder"

    def __init__(self, path: Path, *, limits: Limits = Limits(), root: Path | None = None) -> None:
        import tifffile

        what = path.name
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and not p.name.startswith(".")),
            key=lambda p: natural_sort_key(p.name),
        )
        if not files:
            raise ValueError(f"{what}: folder holds no .tif/.tiff files")
        check_shape((len(files), 1, 1), limits, what=what)
        real_root = Path(root).resolve() if root is not None else None
        shape2d: tuple[int, int] | None = None
        dtype: np.dtype | None = None
        stored = 0
        compressed = False
        voxel_size: VoxelSize | None = None
        facts: dict[str, Any] = {}
        for i, f in enumerate(files):
            if real_root is not None and not f.resolve().is_relative_to(real_root):
                raise ValueError(f"{what}/{f.name} links outside the data root")
            try:
                with tifffile.TiffFile(f) as tif:
                    s = tif.series[0]
                    zyx, _, _ = _zyx_from_axes(s.shape, s.axes, what=f.name)
                    if zyx[0] != 1:
                        raise ValueError(f"{what}/{f.name}: holds {zyx[0]} slices; expected one per file")
                    dt = check_dtype(s.dtype, what=f.name)
                    for p in s.pages:
                        e, b, c = _tiff_page_extent(p)
                        if e > f.stat().st_size:
                            raise ValueError(f"{what}/{f.name}: file is truncated")
                        stored += b
                        compressed = compressed or c
                    if i == 0:
                        shape2d, dtype = zyx[1:], dt
                        voxel_size, facts = _tiff_voxel_size(tif, nz=1)
            except ValueError:
                raise
            except Exception as exc:
                raise ValueError(f"{what}/{f.name}: not a readable TIFF file: {exc}") from exc
            if zyx[1:] != shape2d or dt != dtype:
                raise ValueError(
                    f"{what}/{f.name}: slice is {zyx[1]}x{zyx[2]} {dt}, but the first slice "
                    f"{files[0].name} is {shape2d[0]}x{shape2d[1]} {dtype}"  # type: ignore[index]
                )
        assert shape2d is not None and dtype is not None
        zyx = check_shape((len(files), *shape2d), limits, what=what)
        check_declared_size(zyx, dtype, stored, limits, compressed=compressed, what=what)
        if voxel_size is not None and len(files) > 1:
            # A slice's own metadata cannot know the spacing between slices.
            facts["pixel_size_yx_nm"] = list(voxel_size[1:])
            voxel_size = None
        facts["files"] = len(files)
        self._files = files
        super().__init__(path, zyx, dtype, voxel_size, facts)

    def _read(self, z0: int, z1: int) -> np.ndarray:
        import tifffile

        out = np.empty((z1 - z0, *self.shape[1:]), dtype=self.dtype)
        for k, f in enumerate(self._files[z0:z1]):
            plane = tifffile.imread(f, maxworkers=1)
            if plane.size != out[k].size:
                raise ValueError(f"{f.name} changed shape to {plane.shape}")
            out[k] = plane.reshape(self.shape[1:])
        return out


# --------------------------------------------------------------------------- HDF5


def _hdf5_voxel_size(dset: Any) -> VoxelSize | None:
    for holder in (dset, dset.parent, dset.file):
        attrs = holder.attrs
        if "element_size_um" in attrs:  # Fiji/ilastik convention, ZYX micrometres
            return _plausible_voxel_size(np.asarray(attrs["element_size_um"], dtype=float)[-3:] * 1e3)
        for key in ("voxel_size_nm", "resolution", "voxel_size"):  # CREMI: resolution, ZYX nm
            if key in attrs:
                unit = attrs.get("unit", attrs.get("units", "nm"))
                unit = unit.decode() if isinstance(unit, bytes) else str(unit)
                factor = unit_to_nm(unit) or 1.0
                values = np.asarray(attrs[key], dtype=float).ravel()
                if values.size >= 3:
                    return _plausible_voxel_size(values[-3:] * factor)
    return None


class Hdf5Source(Source):
    """One dataset of an HDF5 file (``dataset`` required when several could be meant)."""

    format = "hdf5"

    def __init__(self, path: Path, *, dataset: str | None = None, limits: Limits = Limits()) -> None:
        import h5py

        what = path.name
        try:
            f = h5py.File(path, "r")
        except Exception as exc:
            raise ValueError(f"{what}: not a readable HDF5 file: {exc}") from exc
        self._file = f
        try:
            self._setup(f, path, dataset=dataset, limits=limits)
        except Exception:
            f.close()
            raise

    def _setup(self, f: Any, path: Path, *, dataset: str | None, limits: Limits) -> None:
        import h5py

        what = path.name
        if dataset is None:
            names: list[str] = []
            f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 else None)
            if not names:
                raise ValueError(f"{what}: HDF5 file holds no image dataset")
            if len(names) > 1:
                raise ValueError(f"{what}: several datasets ({', '.join(sorted(names)[:20])}); name one")
            dataset = names[0]
        link = f.get(dataset, getlink=True)
        if link is None:
            raise ValueError(f"{what}: dataset {dataset!r} does not exist")
        if isinstance(link, h5py.ExternalLink):
            raise ValueError(f"{what}: dataset {dataset!r} is an external link; refusing to follow it")
        dset = f[dataset]
        if not isinstance(dset, h5py.Dataset):
            raise ValueError(f"{what}: {dataset!r} is a group, not a dataset")
        if Path(dset.file.filename).resolve() != path.resolve():
            raise ValueError(f"{what}: dataset {dataset!r} lives in another file; refusing it")
        if dset.is_virtual or dset.external:
            raise ValueError(f"{what}: dataset {dataset!r} stores its data in other files; refusing it")
        zyx, index, zpos = _zyx_from_shape(dset.shape, what=f"{what}:{dataset}")
        check_shape(zyx, limits, what=what)
        dtype = check_dtype(dset.dtype, what=f"{what}:{dataset}")
        file_size = path.stat().st_size
        if dset.chunks is None:
            offset = dset.id.get_offset()
            if offset is None:
                raise ValueError(f"{what}: dataset {dataset!r} has no stored data")
            check_declared_size(zyx, dtype, file_size - int(offset), limits, compressed=False, what=what)
        else:
            chunk_bytes = int(np.prod(dset.chunks)) * dtype.itemsize
            if chunk_bytes > limits.max_chunk_bytes:
                raise ValueError(f"{what}: chunk of {chunk_bytes} bytes exceeds the limit of {limits.max_chunk_bytes}")
            stored = int(dset.id.get_storage_size())
            if stored > file_size:
                raise ValueError(f"{what}: file is truncated ({stored} bytes of data, {file_size} in file)")
            check_declared_size(zyx, dtype, stored, limits, compressed=True, what=what)
        self._dset, self._index, self._zpos = dset, index, zpos
        facts = {"dataset": dataset, "chunks": list(dset.chunks) if dset.chunks else None, "compression": dset.compression}
        super().__init__(path, zyx, dtype, _hdf5_voxel_size(dset), facts)

    def _read(self, z0: int, z1: int) -> np.ndarray:
        return _read_template(self._dset, self._index, self._zpos, z0, z1)

    def close(self) -> None:
        self._file.close()
        super().close()


# --------------------------------------------------------------------------- MRC


class MrcSource(Source):
    """MRC/CCP4 file, memory-mapped; voxel size from the header (Å -> nm)."""

    format = "mrc"

    def __init__(self, path: Path, *, limits: Limits = Limits()) -> None:
        import mrcfile

        what = path.name
        try:
            # Validate the header before mapping: mrcfile maps whatever it is told.
            with open(path, "rb") as fh:
                header = fh.read(1024)
            if len(header) < 1024:
                raise ValueError("file is shorter than an MRC header")
            nx, ny, nz, mode = np.frombuffer(header[:16], dtype="<i4")
            if not (0 < nx <= 2**31 and 0 < ny <= 2**31 and 0 < nz <= 2**31):
                nx, ny, nz, mode = np.frombuffer(header[:16], dtype=">i4")
            if not (0 < nx and 0 < ny and 0 < nz):
                raise ValueError(f"header declares shape {nz}x{ny}x{nx}")
            check_shape((int(nz), int(ny), int(nx)), limits, what=what)
            mrc = mrcfile.mmap(path, mode="r", permissive=False)
        except ValueError as exc:
            raise ValueError(f"{what}: not a valid MRC file: {exc}") from exc
        except Exception as exc:
            raise ValueError(f"{what}: not a readable MRC file: {exc}") from exc
        self._mrc = mrc
        try:
            data = mrc.data
            if data is None:
                raise ValueError(f"{what}: MRC file holds no data")
            zyx, index, zpos = _zyx_from_shape(data.shape, what=what)
            check_shape(zyx, limits, what=what)
            dtype = check_dtype(data.dtype, what=what)
            check_declared_size(zyx, dtype, int(data.nbytes), limits, compressed=False, what=what)
            vs = mrc.voxel_size
            voxel = _plausible_voxel_size((float(vs.z) / 10, float(vs.y) / 10, float(vs.x) / 10))
            if voxel is not None and zyx[0] == 1 and data.ndim == 2:
                voxel = (voxel[2], voxel[1], voxel[2])
        except Exception:
            mrc.close()
            raise
        self._data, self._index, self._zpos = data, index, zpos
        super().__init__(path, zyx, dtype, voxel, {"mode": int(mrc.header.mode)})

    def _read(self, z0: int, z1: int) -> np.ndarray:
        return np.array(_read_template(self._data, self._index, self._zpos, z0, z1))

    def close(self) -> None:
        self._data = None
        self._mrc.close()
        super().close()


# --------------------------------------------------------------------------- Zarr


def _ome_attrs(group: Any) -> dict[str, Any]:
    attrs = dict(group.attrs)
    return dict(attrs.get("ome", attrs))


class ZarrSource(Source):
    """A Zarr array, or level 0 of an OME-Zarr multiscale image (zarr v2 or v3)."""

    format = "zarr"

    def __init__(
        self, path: Path, *, dataset: str | None = None, limits: Limits = Limits(), root: Path | None = None
    ) -> None:
        import zarr

        what = path.name
        if (path / "attributes.json").exists() and not any(
            (path / n).exists() for n in ("zarr.json", ".zgroup", ".zarray")
        ):
            raise ValueError(f"{what}: N5 containers are not supported; convert to Zarr or HDF5")
        _check_tree_inside(path, root)
        try:
            node = zarr.open(store=str(path), mode="r")
        except Exception as exc:
            raise ValueError(f"{what}: not a readable Zarr store: {exc}") from exc
        axes_names: str | None = None
        voxel: VoxelSize | None = None
        fmt = "zarr"
        if isinstance(node, zarr.Group):
            ome = _ome_attrs(node)
            if dataset is None and "multiscales" in ome:
                ms = ome["multiscales"][0]
                ds0 = ms["datasets"][0]
                dataset = ds0["path"]
                fmt = "ome-zarr"
                axes = ms.get("axes", [])
                names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
                if names:
                    axes_names = "".join(n[0] for n in names).upper()
                voxel = _ome_voxel_size(ms, ds0, axes)
            elif dataset is None:
                arrays = [name for name, _ in node.members(max_depth=None) if isinstance(_, zarr.Array)]
                arrays = [a for a in arrays if len(node[a].shape) >= 2]
                if not arrays:
                    raise ValueError(f"{what}: Zarr group holds no image array")
                if len(arrays) > 1:
                    raise ValueError(f"{what}: several arrays ({', '.join(sorted(arrays)[:20])}); name one")
                dataset = arrays[0]
            try:
                node = node[dataset]
            except KeyError:
                raise ValueError(f"{what}: array {dataset!r} does not exist") from None
            if not isinstance(node, zarr.Array):
                raise ValueError(f"{what}: {dataset!r} is a group, not an array")
        elif dataset not in (None, ""):
            raise ValueError(f"{what}: is a single array; dataset {dataset!r} does not apply")
        arr = node
        if axes_names is not None and axes_names.isalpha() and len(axes_names) == len(arr.shape):
            zyx, index, zpos = _zyx_from_axes(arr.shape, axes_names, what=what)
        else:
            zyx, index, zpos = _zyx_from_shape(arr.shape, what=what)
        check_shape(zyx, limits, what=what)
        dtype = check_dtype(arr.dtype, what=what)
        chunk_bytes = int(np.prod(arr.chunks)) * dtype.itemsize
        if chunk_bytes > limits.max_chunk_bytes:
            raise ValueError(f"{what}: chunk of {chunk_bytes} bytes exceeds the limit of {limits.max_chunk_bytes}")
        check_declared_size(zyx, dtype, _tree_size(path), limits, compressed=True, what=what)
        self._arr, self._index, self._zpos = arr, index, zpos
        self.format = fmt
        facts = {"dataset": dataset, "chunks": list(arr.chunks)}
        super().__init__(path, zyx, dtype, voxel, facts)

    def _read(self, z0: int, z1: int) -> np.ndarray:
        return _read_template(self._arr, self._index, self._zpos, z0, z1)


def _ome_voxel_size(ms: dict[str, Any], ds0: dict[str, Any], axes: list[Any]) -> VoxelSize | None:
    scale = None
    for t in ds0.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = list(t["scale"])
    for t in ms.get("coordinateTransformations", []) or []:
        if t.get("type") == "scale" and scale is not None:
            scale = [a * b for a, b in zip(scale, t["scale"])]
    if scale is None or len(scale) != len(axes):
        return None
    out: dict[str, float] = {}
    for ax, s in zip(axes, scale):
        if not isinstance(ax, dict):
            return None
        if ax.get("name") in ("z", "y", "x"):
            factor = unit_to_nm(ax.get("unit", "")) if ax.get("unit") else None
            if factor is None:
                return None
            out[ax["name"]] = float(s) * factor
    if set(out) == {"y", "x"}:
        out["z"] = out["x"]
    if set(out) != {"z", "y", "x"}:
        return None
    return _plausible_voxel_size((out["z"], out["y"], out["x"]))


# --------------------------------------------------------------------------- entry point


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
