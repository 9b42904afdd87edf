"""The viewer's 3D view: a label layer's surfaces as one GLB, meshed from a pyramid level small
enough to answer in a second or two (the slices keep full resolution; the 3D view is an overview).

A class layer gives one node per class present (background left out), in the class colours; an
instance layer gives the cell asked for, or all cells as one surface.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from annotations.imaging import omezarr
from annotations.models import LabelClass, LabelLayer, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from segmentation.core.meshes import mask_mesh, scene_glb

MESH_MAX_VOXELS = 4_000_000  # the finest level at most this big is meshed
MESH_MAX_FACES = 15_000  # per node


def mesh_level(levels: list[dict[str, Any]], max_voxels: int = MESH_MAX_VOXELS) -> dict[str, Any]:
    """The finest pyramid level of at most `max_voxels` voxels (the coarsest if none is that small)."""
    ordered = sorted(levels, key=lambda lv: lv["level"])
    return next((lv for lv in ordered if math.prod(lv["shape"]) <= max_voxels), ordered[-1])


def layer_mesh_glb(volume: Volume, layer: LabelLayer, *, value: int | None = None) -> bytes:
    """GLB of `layer`'s surfaces in nm (see module doc); `value` picks one class or cell."""
    level = mesh_level(volume.levels)
    data = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), layer.name, level["level"])[:])
    spacing = [v * d for v, d in zip(volume.voxel_size_nm, level["downsample"])]
    # A coarse voxel's centre sits between level-0 voxels: (downsample - 1) / 2 of them in.
    origin = [(d - 1) / 2 * v for d, v in zip(level["downsample"], volume.voxel_size_nm)]
    meshes, colors = {}, {}
    if layer.kind == LabelLayer.Kind.INSTANCES:
        mask = data == value if value is not None else data > 0
        name = f"cell {value}" if value is not None else "cells"
        meshes[name] = mask_mesh(mask, voxel_size_nm=spacing, origin_nm=origin, max_faces=MESH_MAX_FACES * 2)
        colors[name] = (43, 217, 192, 255)
    else:
        classes = {c.value: c for c in LabelClass.objects.filter(project_id=volume.project_id,
                                                                  kind=LabelClass.Kind.SEMANTIC)}
        present = [int(v) for v in np.unique(data) if v != 0]
        if value is not None:
            present = [v for v in present if v == value]
        for v in present:
            c = classes.get(v)
            if c is None or c.name == "background":
                continue
            meshes[c.name] = mask_mesh(data == v, voxel_size_nm=spacing, origin_nm=origin, max_faces=MESH_MAX_FACES)
            colors[c.name] = c.rgba
    if not any(len(m.faces) for m in meshes.values()):
        raise ApplicationError(f"layer {layer.name!r} holds nothing to show in 3D"
                               + (f" with value {value}" if value is not None else ""),
                               code="nothing_to_mesh", status_code=404)
    return scene_glb(meshes, colors=colors)
