"""A volume's label layers: the one owner of their storage (the row and the zarr group).

Get, create, lock, bump the version of and write a whole layer here; painting goes through
annotations.strokes, which uses this module's lock and bump. Label tiles are cached by the
layer's version (their ETag), so every write bumps it: a writer bumps before and after
writing, so no tile cached before the write looks current afterwards. The names of the
layers code refers to are annotations.layer_names.LayerName.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import F
from django.db.models.functions import Greatest

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.models import LabelClass, LabelLayer, Project, Volume
from annotations.storage import volume_zarr_path

_BUMP_SQL = (f"UPDATE {LabelLayer._meta.db_table} SET version = version + %s, "
             "max_value = CASE WHEN max_value < %s THEN %s ELSE max_value END WHERE id = %s RETURNING version, max_value")


def layer_get(volume: Volume, name: str) -> LabelLayer | None:
    """The volume's layer called `name`, or None."""
    return volume.layers.filter(name=name).first()


#: Kind and editability of the layers code makes, decided once per name: the app's outputs
#: and the phantom's truth are read-only; cell layers hold instance ids.
_KNOWN: dict[str, tuple[str, bool]] = {
    LayerName.MANUAL: (LabelLayer.Kind.LABELS, True),
    LayerName.CELLS: (LabelLayer.Kind.INSTANCES, True),
    LayerName.PREDICTION: (LabelLayer.Kind.LABELS, False),
    LayerName.CELLS_AUTO: (LabelLayer.Kind.INSTANCES, False),
    LayerName.TRUTH: (LabelLayer.Kind.LABELS, False),
    LayerName.CELLS_TRUTH: (LabelLayer.Kind.INSTANCES, False),
}


def layer_defaults(name: str) -> tuple[str | None, bool | None]:
    """(kind, editable) decided for a :class:`LayerName` name; (None, None) for any other name."""
    return _KNOWN.get(name, (None, None))


def layer_create(volume: Volume, name: str, *, kind: str | None = None, editable: bool | None = None) -> LabelLayer:
    """Create an empty label layer (zarr and row); returns the existing one if present.

    A name of :class:`LayerName` has its kind and editability decided here (ValueError when
    `kind` says otherwise); another name is a class layer unless `kind` says instances, and
    editable unless `editable` says not. A class layer's NGFF metadata names and colours the
    project's classes, so napari and webKnossos show "mitochondrion", not 4."""
    known_kind, known_editable = layer_defaults(name)
    if kind is not None and known_kind is not None and kind != known_kind:
        raise ValueError(f"layer {name!r} holds {known_kind}, not {kind}")
    kind = kind or known_kind or LabelLayer.Kind.LABELS
    editable = editable if editable is not None else known_editable if known_editable is not None else True
    layer = layer_get(volume, name)
    if layer is not None:
        return layer
    meta = _class_meta(volume.project) if kind == LabelLayer.Kind.LABELS else {}
    omezarr.create_label_layer(volume_zarr_path(volume), name,
                               dtype="uint32" if kind == LabelLayer.Kind.INSTANCES else "uint16", **meta)
    return LabelLayer.objects.create(volume=volume, name=name, kind=kind, editable=editable)


def layer_lock(volume: Volume, name: str) -> Any:
    """Hold the write lock of one label layer (a file lock, so it spans processes)."""
    return store_lock(volume_zarr_path(volume), name)


@contextmanager
def store_lock(dest: Path, key: str) -> Iterator[None]:
    """Hold the file lock `key` of the volume store at `dest` (a layer's name, or a name of
    one of its parts such as "<layer>.pyramid")."""
    folder = dest / ".locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def layer_bump(layer: LabelLayer, *, max_value: int = 0, count: int = 1) -> int:
    """Add `count` to the layer's version (one per stroke, or one per write) and raise its
    max_value to at least `max_value`, in one statement; returns the new version.

    One UPDATE, so concurrent bumps from several processes are all counted."""
    if connection.vendor in ("sqlite", "postgresql"):  # both know UPDATE ... RETURNING
        with connection.cursor() as cursor:
            cursor.execute(_BUMP_SQL, [count, max_value, max_value, layer.pk])
            row = cursor.fetchone()
        if row is None:
            raise LabelLayer.DoesNotExist(f"layer {layer.pk} is gone")
        layer.version, layer.max_value = row
        return layer.version
    LabelLayer.objects.filter(pk=layer.pk).update(version=F("version") + count,
                                                  max_value=Greatest(F("max_value"), max_value))
    layer.refresh_from_db(fields=["version", "max_value"])
    return layer.version


def layer_write_whole(volume: Volume, layer: LabelLayer, data: np.ndarray) -> int:
    """Replace the whole of `layer` by `data` (Z, Y, X): level 0 slab by slab, then every
    coarser level, under the layer's lock; bumps the version once; returns it.

    For layers a job or the demo writes at once (ground truth); painted layers change by strokes."""
    dest = volume_zarr_path(volume)
    with layer_lock(volume, layer.name):
        level0 = omezarr.open_label_level(dest, layer.name, 0, mode="r+")
        if tuple(data.shape) != tuple(level0.shape):
            raise ValueError(f"data of shape {tuple(data.shape)} for layer {layer.name!r} of shape {level0.shape}")
        step = int(level0.chunks[0])
        for z0 in range(0, data.shape[0], step):
            level0[z0:z0 + step] = data[z0:z0 + step].astype(level0.dtype, copy=False)
        omezarr.update_label_pyramid(dest, layer.name)
        return layer_bump(layer, max_value=int(data.max(initial=0)))


def class_colors(project_id: int) -> dict[int, tuple[int, int, int, int]]:
    """{value: RGBA} of every class of the project: the colours label tiles, thumbnails and
    meshes paint a class value in (LabelClass.rgba, from its #rrggbb colour)."""
    return {c.value: c.rgba for c in LabelClass.objects.filter(project_id=project_id)}


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
    classes = list(project.label_classes.filter(kind=LabelClass.Kind.SEMANTIC))
    return {"colors": {c.value: c.rgba for c in classes}, "properties": {c.value: {"name": c.name} for c in classes}}
