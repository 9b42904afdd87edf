"""Zarr and OME-Zarr reader (zarr v2 and v3 stores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annotations.imaging.readers.base import (
    Source,
    VoxelSize,
    _check_tree_inside,
    _plausible_voxel_size,
    _read_template,
    _tree_size,
    _unit_from_chunks,
    _zyx_from_axes,
    _zyx_from_shape,
    unit_to_nm,
)
from annotations.imaging.validation import Limits, check_declared_size, check_dtype, check_shape

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
                arrays = [name for name, member in node.members(max_depth=None)
                          if isinstance(member, zarr.Array) and len(member.shape) >= 2]
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
        dtype = check_dtype(arr.dtype, what=what, allowed=limits.dtypes)
        chunk_bytes = int(np.prod(arr.chunks)) * dtype.itemsize
        if chunk_bytes > limits.max_chunk_bytes:
            raise ValueError(f"{what}: chunk of {chunk_bytes} bytes exceeds the limit of {limits.max_chunk_bytes}")
        check_declared_size(zyx, dtype, _tree_size(path), limits, compressed=True, what=what)
        self._arr, self._index, self._zpos = arr, index, zpos
        self.format = fmt
        facts = {"dataset": dataset, "chunks": list(arr.chunks)}
        super().__init__(path, zyx, dtype, voxel, facts)
        self.read_unit_yx = _unit_from_chunks(arr.chunks, index, zpos)

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return _read_template(self._arr, self._index, self._zpos, (z0, z1), (y0, y1), (x0, x1))


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


