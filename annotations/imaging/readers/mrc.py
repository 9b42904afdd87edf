"""MRC/CCP4 reader (mrcfile, memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotations.imaging.readers.base import Source, _plausible_voxel_size, _read_template, _zyx_from_shape
from annotations.imaging.validation import Limits, check_declared_size, check_dtype, check_shape

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
            dtype = check_dtype(data.dtype, what=what, allowed=limits.dtypes)
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

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return np.array(_read_template(self._data, self._index, self._zpos, (z0, z1), (y0, y1), (x0, x1)))

    def close(self) -> None:
        self._data = None
        self._mrc.close()
        super().close()


