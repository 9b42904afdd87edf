"""Label layers of a volume: their creation. Edits go through annotations.strokes."""
from __future__ import annotations

from annotations.defaults import hex_to_rgba
from annotations.imaging import omezarr
from annotations.models import LabelLayer, Volume
from annotations.storage import volume_zarr_path


def layer_create(volume: Volume, name: str, *, kind: str = LabelLayer.Kind.LABELS,
                 editable: bool = True) -> LabelLayer:
    """Create an empty label layer (zarr and row); returns the existing one if present.

    A class layer's NGFF metadata names and colours the project's classes, so napari and
    webKnossos show "mitochondrion", not 4."""
    layer = volume.layers.filter(name=name).first()
    if layer is not None:
        return layer
    colors = properties = None
    if kind == LabelLayer.Kind.LABELS:
        classes = list(volume.project.label_classes.filter(kind="semantic"))
        colors = {c.value: hex_to_rgba(c.color) for c in classes}
        properties = {c.value: {"name": c.name} for c in classes}
    omezarr.create_label_layer(volume_zarr_path(volume), name,
                               dtype="uint32" if kind == LabelLayer.Kind.INSTANCES else "uint16",
                               colors=colors, properties=properties)
    return LabelLayer.objects.create(volume=volume, name=name, kind=kind, editable=editable)
