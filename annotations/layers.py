"""Label layers of a volume: their creation and their class metadata. Edits go through
annotations.strokes."""
from __future__ import annotations

from typing import Any

from django.db.models import F
from django.db.models.functions import Greatest

from annotations.defaults import hex_to_rgba
from annotations.imaging import omezarr
from annotations.models import LabelLayer, Project, Volume
from annotations.storage import volume_zarr_path


def layer_create(volume: Volume, name: str, *, kind: str = LabelLayer.Kind.LABELS,
                 editable: bool = True) -> LabelLayer:
    """Create an empty label layer (zarr and row); returns the existing one if present.

    A class layer's NGFF metadata names and colours the project's classes, so napari and
    webKnossos show "mitochondrion", not 4."""
    layer = volume.layers.filter(name=name).first()
    if layer is not None:
        return layer
    meta = _class_meta(volume.project) if kind == LabelLayer.Kind.LABELS else {}
    omezarr.create_label_layer(volume_zarr_path(volume), name,
                               dtype="uint32" if kind == LabelLayer.Kind.INSTANCES else "uint16", **meta)
    return LabelLayer.objects.create(volume=volume, name=name, kind=kind, editable=editable)


def layer_bump(layer: LabelLayer, *, max_value: int = 0) -> int:
    """A new version of `layer` (its max_value raised to at least `max_value`); returns the version.

    Label tiles are cached by version (their ETag): a writer bumps it before and after
    writing so no tile cached before the write looks current afterwards."""
    LabelLayer.objects.filter(pk=layer.pk).update(version=F("version") + 1,
                                                  max_value=Greatest(F("max_value"), max_value))
    layer.refresh_from_db(fields=["version", "max_value"])
    return layer.version


def layers_describe_classes(project: Project) -> int:
    """Rewrite the class names and colours in the NGFF metadata of every class layer of the
    project's ready volumes, so napari, Neuroglancer and webKnossos follow a renamed or
    recoloured class; returns how many layers were rewritten."""
    meta = _class_meta(project)
    layers = LabelLayer.objects.filter(volume__project=project, volume__state=Volume.State.READY,
                                       kind=LabelLayer.Kind.LABELS).select_related("volume")
    for layer in layers:
        omezarr.set_label_classes(volume_zarr_path(layer.volume), layer.name, **meta)
    return len(layers)


def _class_meta(project: Project) -> dict[str, Any]:
    classes = list(project.label_classes.filter(kind="semantic"))
    return {"colors": {c.value: hex_to_rgba(c.color) for c in classes},
            "properties": {c.value: {"name": c.name} for c in classes}}
