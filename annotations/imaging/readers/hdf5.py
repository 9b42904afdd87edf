"""HDF5 dataset reader (h5py); refuses external links and virtual datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annotations.imaging.readers.base import (
    Source,
    VoxelSize,
    _plausible_voxel_size,
    _read_template,
    _unit_from_chunks,
    _zyx_from_shape,
    unit_to_nm,
)
from annotations.imaging.validation import Limits, check_declared_size, check_dtype, check_shape

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
        dtype = check_dtype(dset.dtype, what=f"{what}:{dataset}", allowed=limits.dtypes)
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
        self.read_unit_yx = _unit_from_chunks(dset.chunks, index, zpos)

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return _read_template(self._dset, self._index, self._zpos, (z0, z1), (y0, y1), (x0, x1))

    def close(self) -> None:
        self._file.close()
        super().close()


