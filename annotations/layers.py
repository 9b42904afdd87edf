"""Label layers of a volume: create them and write whole slices (demo, jobs, imports).

Stroke-level edits go through the stroke service; this module is for bulk writes.
Every write bumps the layer's version so label tiles and acks see the change.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from django.db.models import F

from annotations.defaults import hex_to_rgba
from annotations.imaging import omezarr
from annotations.models import LabelLayer, Volume
from annotations.storage import volume_zarr_path


def layer_create(volume: Volume, name: str, *, kind: str = LabelLayer.Kind.LABELS,
                 editable: bool = True) -> LabelLayer:
    """Create an empty label layer (zarr and row); returns the existing one if present."""
    layer = volume.layers.filter(name=name).first()
    if layer is not None:
        return layer
    colors = ({c.value: hex_to_rgba(c.color) for c in volume.project.label_classes.filter(kind="semantic")}
              if kind == LabelLayer.Kind.LABELS else None)
    omezarr.create_label_layer(volume_zarr_path(volume), name,
                               dtype="uint32" if kind == LabelLayer.Kind.INSTANCES else "uint16", colors=colors)
    return LabelLayer.objects.create(volume=volume, name=name, kind=kind, editable=editable)


def layer_write_slices(volume: Volume, name: str, slices: Mapping[int, np.ndarray]) -> int:
    """Write whole XY slices {z: (Y, X) array} into layer `name`; returns the new version."""
    layer = volume.layers.get(name=name)
    dest = volume_zarr_path(volume)
    level0 = omezarr.open_label_level(dest, name, 0, mode="r+")
    for z, plane in slices.items():
        if plane.shape != level0.shape[1:]:
            raise ValueError(f"slice {z} has shape {plane.shape}, the layer's slices are {level0.shape[1:]}")
        level0[z] = plane.astype(level0.dtype)
        omezarr.update_label_pyramid(dest, name, z=(z, z + 1))
    LabelLayer.objects.filter(pk=layer.pk).update(version=F("version") + 1)
    layer.refresh_from_db()
    return layer.version
