"""Label layers of a volume: their creation. Edits go through annotations.strokes."""
from __future__ import annotations

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
