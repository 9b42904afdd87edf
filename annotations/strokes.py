"""Strokes: apply, undo, redo and replay edits of a label layer; mark slices complete.

Every write to an editable label layer is a Stroke row, so the layer is always the
replay of its active strokes (`layer_replay`). A new stroke is applied to the zarr
directly; undo and redo recompute the stroke's box from the log, so they stay exact
where other people's later strokes overlap. Writes to one layer are serialised by a
file lock (Daphne threads and Celery workers alike). The row is committed before the
chunks are written, so a crash in between leaves a log that replays to the truth.

A painted stroke is acknowledged once its row and level 0 are written: the coarser
levels follow on a background thread (annotations/pyramid_updates.py) under a lock of
their own, so the next stroke need not wait for them; the echo to the other sockets goes
out after the ack when the caller asks for that.
"""
from __future__ import annotations

import fcntl
import uuid as uuidlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from annotations import pyramid_updates, raster
from annotations.imaging import chunkio, omezarr
from annotations.models import CompleteSlice, LabelLayer, Role, Stroke, Volume
from annotations.reviews import audit
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.realtime import broadcast, volume_group

MAX_INSTANCE_ID = 2**32 - 1


@dataclass(frozen=True)
class StrokeOutcome:
    uuid: str
    version: int
    duplicate: bool = False
    event: dict[str, Any] | None = field(default=None, compare=False)


def _refuse(message: str, code: str = "invalid_stroke", status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status)


def layer_lock(volume: Volume, layer: str) -> Any:
    """Hold the write lock of one label layer (a file lock, so it spans processes)."""
    return _store_lock(volume_zarr_path(volume), layer)


@contextmanager
def _store_lock(dest: Path, layer: str) -> Iterator[None]:
    folder = dest / ".locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{layer}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _editable_layer(volume: Volume, name: Any) -> LabelLayer:
    layer = volume.layers.filter(name=str(name)).first()
    if layer is None:
        raise _refuse(f"this volume has no layer {name!r}", code="unknown_layer", status=404)
    if not layer.editable:
        raise _refuse(f"layer {name!r} is read-only", code="read_only_layer", status=409)
    return layer


def _checked_value(volume: Volume, layer: LabelLayer, mode: str, value: Any) -> int:
    if mode == Stroke.Mode.ERASE:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(f"value {value!r} is not an integer")
    if layer.kind == LabelLayer.Kind.INSTANCES:
        if not 1 <= value <= MAX_INSTANCE_ID:
            raise _refuse(f"cell id {value} is outside 1..{MAX_INSTANCE_ID}")
        return value
    if not volume.project.label_classes.filter(value=value, kind="semantic").exists():
        raise _refuse(f"{value} is not a class of this project", code="unknown_class")
    return value


def _gesture(data: Mapping[str, Any]) -> raster.Gesture:
    try:
        points = tuple((float(p[0]), float(p[1])) for p in data["points"][: raster.MAX_POINTS + 1])
        return raster.Gesture(axis=str(data["axis"]), index=int(data["index"]), points=points,
                              radius=float(data.get("radius", 1.0)), mode=str(data["mode"]))
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise _refuse(f"malformed stroke: {exc}") from None


def _box_of(stroke: Stroke) -> raster.Box:
    return ((stroke.z0, stroke.z1), (stroke.y0, stroke.y1), (stroke.x0, stroke.x1))


def _shape(box: raster.Box) -> tuple[int, int, int]:
    return tuple(hi - lo for lo, hi in box)  # type: ignore[return-value]


def _bump(layer: LabelLayer, *, max_value: int = 0) -> int:
    LabelLayer.objects.filter(pk=layer.pk).update(version=F("version") + 1,
                                                  max_value=Greatest(F("max_value"), max_value))
    layer.refresh_from_db(fields=["version", "max_value"])
    return layer.version


@lru_cache(maxsize=128)
def _open_level0(zarr_path: str, layer: str) -> Any:
    # Opening reads metadata (several store round trips); a layer's shape never changes.
    return omezarr.open_label_level(Path(zarr_path), layer, 0, mode="r+")


def _level0(volume: Volume, layer: str) -> Any:
    return _open_level0(str(volume_zarr_path(volume)), layer)


def _region_io(volume: Volume, layer: str) -> chunkio.RegionIO:
    # Strokes touch one or two chunks: read and write them without zarr's async bridge.
    return omezarr.label_regions(volume_zarr_path(volume), layer)[0]


def _write(volume: Volume, layer: LabelLayer, box: raster.Box, block: np.ndarray, *,
           defer_pyramid: bool = False) -> None:
    _region_io(volume, layer.name).write(box, block)
    dest = volume_zarr_path(volume)
    pyramid_lock = partial(_store_lock, dest, f"{layer.name}.pyramid")  # the coarser levels' own lock
    if defer_pyramid:
        pyramid_updates.submit(dest, layer.name, box, pyramid_lock)
    else:
        with pyramid_lock():
            omezarr.update_label_pyramid(dest, layer.name, z=box[0], y=box[1], x=box[2])


def _record(volume: Volume, layer: LabelLayer, user: Any, *, uid: str, axis: str, index: int, mode: str,
            value: int, radius: float, points: Any, box: raster.Box, mask: np.ndarray,
            after: np.ndarray | None, defer_pyramid: bool = False) -> StrokeOutcome:
    """Apply one effect (mask -> value, or mask -> after) to the layer, log it, announce it."""
    block = _region_io(volume, layer.name).read(box)
    before = block.copy()
    block[mask] = value if after is None else after[mask]
    with transaction.atomic():
        version = _bump(layer, max_value=int(value if after is None else after.max(initial=0)))
        Stroke.objects.create(
            layer=layer, user=user if getattr(user, "is_authenticated", False) else None, uuid=uid, axis=axis,
            index=index, mode=mode, value=value, radius=radius, points=points,
            z0=box[0][0], z1=box[0][1], y0=box[1][0], y1=box[1][1], x0=box[2][0], x1=box[2][1],
            mask=raster.pack_mask(mask), after=None if after is None else raster.pack_array(after),
            before=raster.pack_array(before), version=version)
    _write(volume, layer, box, block, defer_pyramid=defer_pyramid)
    return StrokeOutcome(uuid=uid, version=version)


def _claim_uuid(volume: Volume, role: Role, data: Mapping[str, Any]) -> tuple[str, StrokeOutcome | None]:
    """Check the role and the UUID; a UUID seen before gives its earlier outcome (idempotency)."""
    if role < Role.ANNOTATOR:
        raise _refuse("viewers cannot paint", code="forbidden", status=403)
    try:
        uid = str(uuidlib.UUID(str(data.get("uuid"))))
    except ValueError:
        raise _refuse(f"uuid {data.get('uuid')!r} is not a UUID") from None
    seen = Stroke.objects.filter(uuid=uid).select_related("layer").first()
    if seen is None:
        return uid, None
    if seen.layer.volume_id != volume.pk:
        raise _refuse("that uuid belongs to another volume", code="uuid_conflict", status=409)
    if seen.active:  # the row commits before the chunks: a resend after a crash in between repairs them
        box = _box_of(seen)
        with layer_lock(volume, seen.layer.name):
            _write(volume, seen.layer, box, layer_replay(volume, seen.layer.name, box))
    return uid, StrokeOutcome(uuid=uid, version=seen.version, duplicate=True)


def _validate(gesture: raster.Gesture, volume: Volume) -> None:
    try:
        gesture.validate(volume.shape)
    except ValueError as exc:
        raise _refuse(str(exc), code="off_volume" if "off" in str(exc) else "invalid_stroke") from None


def stroke_apply(volume: Volume, user: Any, role: Role, data: Mapping[str, Any], *,
                 announce: bool = True) -> StrokeOutcome:
    """Validate and apply a stroke payload (websocket or REST); a repeated UUID is a no-op.

    With ``announce=False`` the echo to the volume's sockets is left to the caller
    (``outcome.event``), so a websocket can send its ack first.
    """
    uid, seen = _claim_uuid(volume, role, data)
    if seen is not None:
        return seen
    layer = _editable_layer(volume, data.get("layer", "manual"))
    gesture = _gesture(data)
    if gesture.mode not in (Stroke.Mode.PAINT, Stroke.Mode.ERASE, Stroke.Mode.FILL, Stroke.Mode.POLYGON):
        raise _refuse(f"mode {gesture.mode!r} is not paint, erase, fill or polygon")
    _validate(gesture, volume)
    value = _checked_value(volume, layer, gesture.mode, data.get("value"))

    with layer_lock(volume, layer.name):
        if gesture.mode == Stroke.Mode.FILL:
            level0 = _level0(volume, layer.name)
            whole = raster.plane_box(gesture.axis, gesture.index, (0, 10**9), (0, 10**9))
            clipped = tuple((lo, min(hi, n)) for (lo, hi), n in zip(whole, volume.shape))
            plane = raster.to_plane(np.asarray(level0[raster.box_slices(clipped)]), gesture.axis)
            rows, cols, mask2d = raster.fill_mask(plane, gesture.points[0])
        else:
            rows, cols, mask2d = raster.gesture_mask(gesture, volume.shape)
        box = raster.plane_box(gesture.axis, gesture.index, rows, cols)
        outcome = _record(volume, layer, user, uid=uid, axis=gesture.axis, index=gesture.index, mode=gesture.mode,
                          value=value, radius=gesture.radius, points=[list(p) for p in gesture.points],
                          box=box, mask=raster.from_plane(mask2d, gesture.axis), after=None, defer_pyramid=True)
    event = {"type": "stroke", "version": outcome.version,
             "stroke": {"uuid": uid, "layer": layer.name, "axis": gesture.axis, "index": gesture.index,
                        "points": [list(p) for p in gesture.points], "radius": gesture.radius, "value": value,
                        "mode": gesture.mode, "user": getattr(user, "username", "")}}
    if announce:
        broadcast(volume_group(volume.pk), event)
    return StrokeOutcome(uuid=outcome.uuid, version=outcome.version, event=event)


def layer_replay(volume: Volume, layer_name: str, box: raster.Box | None = None) -> np.ndarray:
    """The content of `box` (default: the whole layer) rebuilt from the active strokes alone."""
    layer = volume.layers.get(name=layer_name)
    box = box or tuple((0, n) for n in volume.shape)  # type: ignore[assignment]
    dtype = _level0(volume, layer_name).dtype
    out = np.zeros(_shape(box), dtype)
    (z0, z1), (y0, y1), (x0, x1) = box
    strokes = layer.strokes.filter(active=True, z0__lt=z1, z1__gt=z0, y0__lt=y1, y1__gt=y0, x0__lt=x1, x1__gt=x0)
    for stroke in strokes.order_by("id").iterator():
        own = _box_of(stroke)
        inter = raster.box_intersection(own, box)
        if inter is None:
            continue
        mask = raster.unpack_mask(stroke.mask, _shape(own))[raster.box_slices(inter, own)]
        target = out[raster.box_slices(inter, box)]
        if stroke.after is None:
            target[mask] = stroke.value
        else:
            after = raster.unpack_array(stroke.after, _shape(own), dtype)[raster.box_slices(inter, own)]
            target[mask] = after[mask]
    return out


def _toggle(volume: Volume, user: Any, role: Role, uid: str, *, active: bool) -> StrokeOutcome:
    if role < Role.ANNOTATOR:
        raise _refuse("viewers cannot undo", code="forbidden", status=403)
    try:
        uid = str(uuidlib.UUID(str(uid)))
    except ValueError:
        raise _refuse(f"uuid {uid!r} is not a UUID") from None
    stroke = Stroke.objects.filter(uuid=uid, layer__volume=volume).select_related("layer").first()
    if stroke is None:
        raise _refuse("no such stroke on this volume", code="unknown_stroke", status=404)
    if stroke.user_id != getattr(user, "pk", None) and role < Role.MANAGER:
        raise _refuse("only its author or a manager can undo or redo a stroke", code="forbidden", status=403)
    layer = stroke.layer
    with layer_lock(volume, layer.name):
        stroke.refresh_from_db(fields=["active"])
        if stroke.active == active:
            layer.refresh_from_db(fields=["version"])
            return StrokeOutcome(uuid=uid, version=layer.version, duplicate=True)
        box = _box_of(stroke)
        with transaction.atomic():
            Stroke.objects.filter(pk=stroke.pk).update(active=active)
            version = _bump(layer)
        _write(volume, layer, box, layer_replay(volume, layer.name, box))
    broadcast(volume_group(volume.pk), {"type": "redo" if active else "undo", "uuid": uid, "layer": layer.name,
                                        "version": version, "user": getattr(user, "username", "")})
    audit.audit_stroke_toggled(volume, user, layer.name, uid, active=active)
    return StrokeOutcome(uuid=uid, version=version)


def stroke_undo(volume: Volume, user: Any, role: Role, uid: str) -> StrokeOutcome:
    return _toggle(volume, user, role, uid, active=False)


def stroke_redo(volume: Volume, user: Any, role: Role, uid: str) -> StrokeOutcome:
    return _toggle(volume, user, role, uid, active=True)


def layer_write_slices(volume: Volume, name: str, slices: Mapping[int, np.ndarray], *, user: Any = None) -> int:
    """Replace whole XY slices {z: (Y, X) array} of layer `name` (demo, accepted predictions).

    Logged as strokes of mode "replace", so replay and undo see them like any other edit.
    """
    layer = volume.layers.get(name=name)
    dtype = _level0(volume, name).dtype
    outcome = None
    with layer_lock(volume, name):
        for z, plane in slices.items():
            if plane.shape != tuple(volume.shape[1:]):
                raise ValueError(f"slice {z} has shape {plane.shape}, the layer's slices are {volume.shape[1:]}")
            box = raster.plane_box("z", int(z), (0, plane.shape[0]), (0, plane.shape[1]))
            after = raster.from_plane(plane.astype(dtype), "z")
            outcome = _record(volume, layer, user, uid=str(uuidlib.uuid4()), axis="z", index=int(z),
                              mode=Stroke.Mode.REPLACE, value=0, radius=0, points=[], box=box,
                              mask=np.ones(after.shape, bool), after=after)
    return outcome.version if outcome else layer.version


def slice_mark_complete(volume: Volume, user: Any, role: Role, *, layer: str = "manual", axis: Any, index: Any,
                        complete: bool) -> None:
    """Mark (or unmark) a slice whose unpainted voxels count as background in training."""
    if role < Role.ANNOTATOR:
        raise _refuse("viewers cannot mark slices", code="forbidden", status=403)
    label_layer = _editable_layer(volume, layer)
    if axis not in raster.AXES or not isinstance(index, int) or not 0 <= index < volume.shape[raster.AXES.index(axis)]:
        raise _refuse(f"slice {axis}={index} is off the volume", code="off_volume")
    if complete:
        CompleteSlice.objects.get_or_create(layer=label_layer, axis=axis, index=index)
    else:
        CompleteSlice.objects.filter(layer=label_layer, axis=axis, index=index).delete()
    audit.audit_slice_marked(volume, user, label_layer.name, axis, index, bool(complete))
    broadcast(volume_group(volume.pk), {"type": "mark_complete", "axis": axis, "index": index,
                                        "complete": bool(complete), "user": getattr(user, "username", "")})


def layer_value_at(volume: Volume, layer_name: str, z: int, y: int, x: int) -> int:
    """The label at one voxel (the viewer's picker)."""
    if volume.layers.filter(name=layer_name).first() is None:
        raise _refuse(f"this volume has no layer {layer_name!r}", code="unknown_layer", status=404)
    if not all(0 <= v < n for v, n in zip((z, y, x), volume.shape)):
        raise _refuse(f"voxel ({z}, {y}, {x}) is off the volume", code="off_volume")
    return int(_level0(volume, layer_name)[z, y, x])


def stroke_accept_prediction(volume: Volume, user: Any, role: Role, data: Mapping[str, Any], *,
                             source: str = "prediction") -> StrokeOutcome:
    """Copy the labels of layer `source` under a brush gesture into an editable layer.

    `data` is a stroke payload (uuid, layer (default "manual"), axis, index, points,
    radius). Logged as one stroke of mode "replace" whose `after` holds the copied
    labels, so undo, redo and replay treat it like painting; voxels where `source` is 0
    are left as they were. A repeated UUID is a no-op.
    """
    uid, seen = _claim_uuid(volume, role, data)
    if seen is not None:
        return seen
    layer = _editable_layer(volume, data.get("layer", "manual"))
    if volume.layers.filter(name=source).first() is None:
        raise _refuse(f"this volume has no layer {source!r}", code="unknown_layer", status=404)
    gesture = _gesture({**data, "mode": Stroke.Mode.PAINT})
    _validate(gesture, volume)
    with layer_lock(volume, layer.name):
        rows, cols, mask2d = raster.gesture_mask(gesture, volume.shape)
        box = raster.plane_box(gesture.axis, gesture.index, rows, cols)
        dtype = _level0(volume, layer.name).dtype
        copied = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), source, 0)[raster.box_slices(box)])
        mask = raster.from_plane(mask2d, gesture.axis) & (copied != 0)
        after = np.where(mask, copied, 0).astype(dtype)
        outcome = _record(volume, layer, user, uid=uid, axis=gesture.axis, index=gesture.index,
                          mode=Stroke.Mode.REPLACE, value=0, radius=gesture.radius,
                          points=[list(p) for p in gesture.points], box=box, mask=mask, after=after)
    broadcast(volume_group(volume.pk), {
        "type": "stroke", "version": outcome.version,
        "stroke": {"uuid": uid, "layer": layer.name, "axis": gesture.axis, "index": gesture.index,
                   "points": [list(p) for p in gesture.points], "radius": gesture.radius, "value": 0,
                   "mode": Stroke.Mode.REPLACE, "source": source, "user": getattr(user, "username", "")}})
    return outcome


__all__ = ["StrokeOutcome", "layer_lock", "layer_replay", "layer_value_at", "layer_write_slices",
           "slice_mark_complete", "stroke_accept_prediction", "stroke_apply", "stroke_redo", "stroke_undo"]
