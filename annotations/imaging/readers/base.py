"""The :class:`Source` interface, :class:`ArraySource` and helpers shared by the format readers."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotations.imaging.validation import Limits, check_dtype, check_shape

VoxelSize = tuple[float, float, float]



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
    read_unit_yx : tuple[int, int] or None
        Y x X extent the storage decodes at once (a TIFF tile or strip, a chunk), so a
        reader of regions can align to it; None when any region is cheap (memory maps).
    """

    format: str = "unknown"
    read_unit_yx: tuple[int, int] | None = None

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
        """Read whole slices ``z0 <= z < z1``; see :meth:`read_region`."""
        return self.read_region(z0, z1, 0, self.shape[1], 0, self.shape[2])

    def read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Read the box ``[z0, z1) x [y0, y1) x [x0, x1)``, decoding only the storage
        units (tiles, strips, chunks) it touches.

        Returns
        -------
        numpy.ndarray
            Shape ``(z1 - z0, y1 - y0, x1 - x0)``, dtype ``self.dtype`` (native byte
            order), a new array the caller may modify.

        Raises
        ------
        IndexError
            If a range is empty or outside the volume.
        ValueError
            If the stored data cannot be decoded (corrupt or truncated file).
        """
        if self._closed:
            raise ValueError(f"source {self.path} is closed")
        box = [(int(a), int(b)) for a, b in ((z0, z1), (y0, y1), (x0, x1))]
        for (a, b), size, axis in zip(box, self.shape, "ZYX"):
            if not 0 <= a < b <= size:
                what = "slice" if axis == "Z" else axis
                raise IndexError(f"{what} range [{a}, {b}) is outside [0, {size})")
        (z0, z1), (y0, y1), (x0, x1) = box
        try:
            data = self._read_region(z0, z1, y0, y1, x0, x1)
        except Exception as exc:  # decoders raise anything on corrupt data
            raise ValueError(
                f"{self.path.name}: cannot decode slices {z0}..{z1 - 1} "
                f"(corrupt or truncated file): {exc}"
            ) from exc
        data = np.asarray(data)
        expected = (z1 - z0, y1 - y0, x1 - x0)
        if data.size != int(np.prod(expected)):
            raise ValueError(
                f"{self.path.name}: slices {z0}..{z1 - 1} decoded to shape {data.shape}, "
                f"expected {expected} (corrupt file)"
            )
        return np.ascontiguousarray(data.reshape(expected), dtype=self.dtype)

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
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
        dtype = check_dtype(array.dtype, what=name, allowed=limits.dtypes)
        zyx = check_shape(shape, limits, what=name)
        self._array = array
        super().__init__(Path(name), zyx, dtype, _checked_voxel_size(voxel_size_nm, what=name))

        chunks = getattr(array, "chunks", None)  # zarr and h5py arrays
        if chunks:
            self.read_unit_yx = (int(chunks[-2]), int(chunks[-1]))

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if len(self._array.shape) == 2:
            return np.asarray(self._array[y0:y1, x0:x1])[None]
        return np.array(self._array[z0:z1, y0:y1, x0:x1])


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
    return vs[0], vs[1], vs[2]


def _plausible_voxel_size(value: Iterable[Any]) -> VoxelSize | None:
    """Voxel size if all entries are finite and positive, else None (missing metadata)."""
    try:
        vs = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vs) == 3 and all(np.isfinite(v) and v > 0 for v in vs):
        return vs[0], vs[1], vs[2]
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


def _read_template(
    arr: Any, index: tuple[Any, ...], zpos: int, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int]
) -> np.ndarray:
    """Read the ZYX box ``z x y x x`` of ``arr`` through an index template from
    :func:`_zyx_from_axes` or :func:`_zyx_from_shape` (its Y and X are the slices that
    are not at ``zpos``, in that order)."""
    idx = list(index)
    ypos, xpos = [i for i, v in enumerate(idx) if isinstance(v, slice) and i != zpos]
    idx[ypos], idx[xpos] = slice(*y), slice(*x)
    if zpos < 0:
        return np.asarray(arr[tuple(idx)])[None]
    idx[zpos] = slice(*z)
    return np.asarray(arr[tuple(idx)])


def _unit_from_chunks(chunks: Sequence[int] | None, index: tuple[Any, ...], zpos: int) -> tuple[int, int] | None:
    """The Y x X part of a chunk shape, located like :func:`_read_template` does."""
    if not chunks:
        return None
    ypos, xpos = [i for i, v in enumerate(index) if isinstance(v, slice) and i != zpos]
    return int(chunks[ypos]), int(chunks[xpos])


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


