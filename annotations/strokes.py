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

import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from annotations import pyramid_updates, raster, signals
from annotations.imaging import chunkio, omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_bump, layer_get, layer_lock, store_lock
from annotations.models import CompleteSlice, LabelClass, LabelLayer, Role, Stroke, StrokeBlock, Volume
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


# The hot path's SQL. Through the ORM each of these statements costs ~1 ms of query
# compilation on this machine against ~0.1 ms to run, and a stroke needs five of them.
_STROKES, _LAYERS, _CLASSES = Stroke._meta.db_table, LabelLayer._meta.db_table, LabelClass._meta.db_table
_SEEN_SQL = (f"SELECT s.id, l.volume_id, s.version, s.active FROM {_STROKES} s "
             f"JOIN {_LAYERS} l ON l.id = s.layer_id WHERE s.uuid = %s")
_LAYER_SQL = f"SELECT id, kind, editable, version, max_value FROM {_LAYERS} WHERE volume_id = %s AND name = %s"
_CLASS_SQL = f"SELECT 1 FROM {_CLASSES} WHERE project_id = %s AND value = %s AND kind = %s"
_STROKE_FIELDS = [f for f in Stroke._meta.concrete_fields if not f.primary_key]
_INSERT_SQL = (f"INSERT INTO {_STROKES} ({', '.join(connection.ops.quote_name(str(f.column)) for f in _STROKE_FIELDS)}) "
               f"VALUES ({', '.join(['%s'] * len(_STROKE_FIELDS))})")


def _fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _editable_layer(volume: Volume, name: Any) -> LabelLayer:
    row = _fetchone(_LAYER_SQL, [volume.pk, str(name)])
    if row is None:
        raise _refuse(f"this volume has no layer {name!r}", code="unknown_layer", status=404)
    layer = LabelLayer(id=row[0], volume=volume, name=str(name), kind=row[1], editable=bool(row[2]),
                       version=row[3], max_value=row[4])
    layer._state.adding, layer._state.db = False, connection.alias
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
    if not 0 <= value < 2**63 or _fetchone(_CLASS_SQL, [volume.project_id, value, LabelClass.Kind.SEMANTIC]) is None:
        raise _refuse(f"{value} is not a class of this project", code="unknown_class")
    return value


def _gesture(data: Mapping[str, Any]) -> raster.Gesture:
    index = data.get("index")
    if isinstance(index, bool) or not isinstance(index, int):  # int() would paint slice 5 for 5.9, 1 for true
        raise _refuse(f"index {index!r} is not an integer")
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


def _region_io(volume: Volume, layer: str) -> chunkio.RegionIO:
    # Strokes touch one or two chunks: read and write them without zarr's async bridge.
    return omezarr.label_regions(volume_zarr_path(volume), layer)[0]


Patch = tuple[raster.Box, np.ndarray]


def _write(volume: Volume, layer: LabelLayer, patches: Sequence[Patch], *, defer_pyramid: bool = False) -> None:
    """Write `patches` (box, block), in order, to level 0; then bring the coarser levels up to date."""
    _region_io(volume, layer.name).write_many(patches)
    dest = volume_zarr_path(volume)
    pyramid_lock = partial(store_lock, dest, f"{layer.name}.pyramid")  # the coarser levels' own lock
    for box, _ in patches:
        if defer_pyramid:
            pyramid_updates.submit(dest, layer.name, box, pyramid_lock)
        else:
            with pyramid_lock():
                omezarr.update_label_pyramid(dest, layer.name, z=box[0], y=box[1], x=box[2])


@dataclass
class _Effect:
    """One stroke's change to a layer: voxels `mask` (over `box`) become `value`, or `after`."""

    uid: str
    user: Any
    axis: str
    index: int
    mode: str
    value: int
    radius: float
    points: list[list[float]]
    box: raster.Box
    mask: np.ndarray
    after: np.ndarray | None = None


def _record(volume: Volume, layer: LabelLayer, effects: Sequence[_Effect], *,
            defer_pyramid: bool = False) -> list[StrokeOutcome]:
    """Apply effects, in order, to the layer and log them: one transaction, one write.

    The caller holds the layer's lock. Each effect's before-patch and block see the
    effects ahead of it, so the log replays to what is written. The rows commit before the
    chunks are written (a crash in between leaves a log ahead of the layer, which a resend
    of the stroke or a replay repairs). A UUID that another process logged meanwhile
    makes the whole transaction fail: the effects are then recorded one at a time, and
    that one is answered as the duplicate it is.
    """
    io = _region_io(volume, layer.name)
    patches: list[Patch] = []
    rows = []
    for e in effects:
        block = io.read(e.box)
        for box, done in patches:  # earlier effects of this batch are not on disk yet
            inter = raster.box_intersection(box, e.box)
            if inter is not None:
                block[raster.box_slices(inter, e.box)] = done[raster.box_slices(inter, box)]
        before = block.copy()
        block[e.mask] = e.value if e.after is None else e.after[e.mask]
        patches.append((e.box, block))
        (z0, z1), (y0, y1), (x0, x1) = e.box
        rows.append(Stroke(
            layer=layer, user=e.user if getattr(e.user, "is_authenticated", False) else None, uuid=e.uid,
            axis=e.axis, index=e.index, mode=e.mode, value=e.value, radius=e.radius, points=e.points,
            z0=z0, z1=z1, y0=y0, y1=y1, x0=x0, x1=x1, mask=raster.pack_mask(e.mask),
            after=None if e.after is None else raster.pack_array(e.after), before=raster.pack_array(before)))
    top = max(int(e.value if e.after is None else e.after.max(initial=0)) for e in effects)
    try:
        with transaction.atomic():
            version = layer_bump(layer, max_value=top, count=len(rows)) - len(rows)
            for row in rows:
                version += 1
                row.version = version
            with connection.cursor() as cursor:
                cursor.executemany(_INSERT_SQL, [[f.get_db_prep_save(f.pre_save(row, True), connection)
                                                  for f in _STROKE_FIELDS] for row in rows])
    except IntegrityError:
        if len(effects) > 1:
            return [o for e in effects for o in _record(volume, layer, [e], defer_pyramid=defer_pyramid)]
        seen = _seen(effects[0].uid)
        if seen is None:
            raise
        return [StrokeOutcome(uuid=effects[0].uid, version=seen[2], duplicate=True)]
    _write(volume, layer, patches, defer_pyramid=defer_pyramid)
    return [StrokeOutcome(uuid=e.uid, version=row.version) for e, row in zip(effects, rows)]


def _seen(uid: str) -> tuple[Any, ...] | None:
    """(id, volume id, version, active) of the stroke logged under `uid`, if any."""
    return _fetchone(_SEEN_SQL, [Stroke._meta.get_field("uuid").get_db_prep_value(uuidlib.UUID(uid), connection)])


def _uuid_text(value: Any) -> str:
    """A UUID given as text, in its canonical form; a number is not a UUID (``UUID(str(5 * 10**30))`` parses)."""
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(uuidlib.UUID(value))
    except ValueError:
        raise _refuse(f"uuid {value!r} is not a UUID") from None


def _claim_uuid(volume: Volume, role: Role, data: Mapping[str, Any]) -> tuple[str, StrokeOutcome | None]:
    """Check the role and the UUID; a UUID seen before gives its earlier outcome (idempotency)."""
    if role < Role.ANNOTATOR:
        raise _refuse("viewers cannot paint", code="forbidden", status=403)
    uid = _uuid_text(data.get("uuid"))
    row = _seen(uid)
    if row is None:
        return uid, None
    _, volume_id, version, active = row
    if volume_id != volume.pk:
        raise _refuse("that uuid belongs to another volume", code="uuid_conflict", status=409)
    if active:  # the row commits before the chunks: a resend after a crash in between repairs them
        seen = Stroke.objects.select_related("layer").get(pk=row[0])
        box = _box_of(seen)
        with layer_lock(volume, seen.layer.name):
            for part in _parts(box):
                _write(volume, seen.layer, [(part, layer_replay(volume, seen.layer.name, part))])
    return uid, StrokeOutcome(uuid=uid, version=version, duplicate=True)


def _validate(gesture: raster.Gesture, volume: Volume) -> None:
    try:
        gesture.validate(volume.shape)
    except ValueError as exc:
        raise _refuse(str(exc), code="off_volume" if "off" in str(exc) else "invalid_stroke") from None


@dataclass
class _Planned:
    """A validated stroke of a batch, waiting for its layer's lock."""

    slot: int
    uid: str
    user: Any
    layer: LabelLayer
    gesture: raster.Gesture
    value: int
    mask: tuple[tuple[int, int], tuple[int, int], np.ndarray] | None  # None for a fill: rasterized under the lock


def _plan(volume: Volume, user: Any, role: Role, data: Mapping[str, Any], slot: int,
          layers: dict[str, LabelLayer]) -> tuple[str, StrokeOutcome | _Planned]:
    uid, seen = _claim_uuid(volume, role, data)
    if seen is not None:
        return uid, seen
    name = str(data.get("layer", LayerName.MANUAL))
    if name not in layers:
        layers[name] = _editable_layer(volume, name)
    layer = layers[name]
    gesture = _gesture(data)
    if gesture.mode not in (Stroke.Mode.PAINT, Stroke.Mode.ERASE, Stroke.Mode.FILL, Stroke.Mode.POLYGON):
        raise _refuse(f"mode {gesture.mode!r} is not paint, erase, fill or polygon")
    _validate(gesture, volume)
    value = _checked_value(volume, layer, gesture.mode, data.get("value"))
    mask = None if gesture.mode == Stroke.Mode.FILL else raster.gesture_mask(gesture, volume.shape)
    return uid, _Planned(slot, uid, user, layer, gesture, value, mask)


def _effect(volume: Volume, p: _Planned) -> _Effect:
    g = p.gesture
    if p.mask is None:  # a fill reads the layer as it is now, so it is rasterized under the lock
        whole = raster.plane_box(g.axis, g.index, (0, 10**9), (0, 10**9))
        clipped = tuple((lo, min(hi, n)) for (lo, hi), n in zip(whole, volume.shape))
        plane = raster.to_plane(_region_io(volume, p.layer.name).read(clipped), g.axis)  # type: ignore[arg-type]
        rows, cols, mask2d = raster.fill_mask(plane, g.points[0])
    else:
        rows, cols, mask2d = p.mask
    return _Effect(uid=p.uid, user=p.user, axis=g.axis, index=g.index, mode=g.mode, value=p.value, radius=g.radius,
                   points=[list(q) for q in g.points], box=raster.plane_box(g.axis, g.index, rows, cols),
                   mask=raster.from_plane(mask2d, g.axis))


def strokes_apply(volume: Volume, items: Sequence[tuple[Any, Role, Mapping[str, Any]]]
                  ) -> list[StrokeOutcome | ApplicationError]:
    """Apply several stroke payloads (user, role, payload) in order: group commit.

    Each layer's strokes are written under one hold of its lock, in one transaction and
    one chunk write per run (a fill starts a run of its own, since it reads what the
    strokes before it painted). The outcome is the same as applying them one by one with
    :func:`stroke_apply`: same versions in the same order, the same log, the same layer.
    A bad stroke gets its ApplicationError in its slot and changes nothing; the others
    are applied. A UUID seen before, or twice in `items`, is applied once. The echoes
    are left to the caller (``outcome.event``).
    """
    results: list[StrokeOutcome | ApplicationError | None] = [None] * len(items)
    first_of: dict[str, int] = {}
    twins: list[tuple[int, int]] = []
    layers: dict[str, LabelLayer] = {}
    planned: list[_Planned] = []
    for slot, (user, role, data) in enumerate(items):
        try:
            uid, plan = _plan(volume, user, role, data, slot, layers)
        except ApplicationError as exc:
            results[slot] = exc
            continue
        if isinstance(plan, StrokeOutcome):
            results[slot] = plan
        elif uid in first_of:
            twins.append((slot, first_of[uid]))
        else:
            first_of[uid] = slot
            planned.append(plan)
    for name in dict.fromkeys(p.layer.name for p in planned):
        mine = [p for p in planned if p.layer.name == name]
        runs: list[list[_Planned]] = []
        for p in mine:
            if p.mask is None or not runs or runs[-1][0].mask is None:
                runs.append([p])
            else:
                runs[-1].append(p)
        with layer_lock(volume, name):
            for run in runs:
                outcomes = _record(volume, run[0].layer, [_effect(volume, p) for p in run], defer_pyramid=True)
                for p, outcome in zip(run, outcomes):
                    results[p.slot] = outcome if outcome.duplicate else _with_event(outcome, p)
    for slot, first in twins:
        done = results[first]
        results[slot] = (StrokeOutcome(uuid=done.uuid, version=done.version, duplicate=True)
                         if isinstance(done, StrokeOutcome) else done)
    return results  # type: ignore[return-value]


def _with_event(outcome: StrokeOutcome, p: _Planned) -> StrokeOutcome:
    g = p.gesture
    event = {"type": "stroke", "version": outcome.version,
             "stroke": {"uuid": p.uid, "layer": p.layer.name, "axis": g.axis, "index": g.index,
                        "points": [list(q) for q in g.points], "radius": g.radius, "value": p.value,
                        "mode": g.mode, "user": getattr(p.user, "username", "")}}
    return StrokeOutcome(uuid=outcome.uuid, version=outcome.version, event=event)


def stroke_apply(volume: Volume, user: Any, role: Role, data: Mapping[str, Any], *,
                 announce: bool = True) -> StrokeOutcome:
    """Validate and apply a stroke payload (websocket or REST); a repeated UUID is a no-op.

    With ``announce=False`` the echo to the volume's sockets is left to the caller
    (``outcome.event``), so a websocket can send its ack first.
    """
    outcome = strokes_apply(volume, [(user, role, data)])[0]
    if isinstance(outcome, ApplicationError):
        raise outcome
    if announce and outcome.event is not None:
        broadcast(volume_group(volume.pk), outcome.event)
    return outcome


def layer_replay(volume: Volume, layer_name: str, box: raster.Box | None = None) -> np.ndarray:
    """The content of `box` (default: the whole layer) rebuilt from the active strokes alone."""
    layer = volume.layers.get(name=layer_name)
    if box is None:
        (nz, ny, nx) = volume.shape
        box = ((0, nz), (0, ny), (0, nx))
    dtype = _region_io(volume, layer_name).dtype
    out = np.zeros(_shape(box), dtype)
    (z0, z1), (y0, y1), (x0, x1) = box
    strokes = layer.strokes.filter(active=True, z0__lt=z1, z1__gt=z0, y0__lt=y1, y1__gt=y0, x0__lt=x1, x1__gt=x0)
    for stroke in strokes.order_by("id").iterator():
        if not stroke.mask:  # a blockwise stroke (label import): its effect lies in StrokeBlock rows
            _replay_blocks(stroke, box, out)
            continue
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


def _replay_blocks(stroke: Stroke, box: raster.Box, out: np.ndarray) -> None:
    """Apply the blocks of a blockwise stroke that touch `box` to `out` (the content of `box`)."""
    (z0, z1), (y0, y1), (x0, x1) = box
    for block in stroke.blocks.filter(z0__lt=z1, z1__gt=z0, y0__lt=y1, y1__gt=y0, x0__lt=x1, x1__gt=x0):
        own = _box_of(block)  # type: ignore[arg-type]
        inter = raster.box_intersection(own, box)
        if inter is None:
            continue
        mask = raster.unpack_mask(block.mask, _shape(own))[raster.box_slices(inter, own)]
        after = raster.unpack_array(block.after, _shape(own), out.dtype)[raster.box_slices(inter, own)]
        out[raster.box_slices(inter, box)][mask] = after[mask]


# Undo, redo and repairs rebuild a stroke's box from the log in parts of at most this many
# voxels, so that undoing a whole-volume label import holds one part in memory, not the volume.
REPLAY_PART_VOXELS = 2**24


def _parts(box: raster.Box) -> list[raster.Box]:
    """`box` cut into slabs of whole rows (Z, then Y) of at most REPLAY_PART_VOXELS voxels."""
    (z0, z1), (y0, y1), (x0, x1) = box
    row = max(x1 - x0, 1)
    rows = max(REPLAY_PART_VOXELS // row, 1)
    if rows >= y1 - y0:
        dz = max(rows // max(y1 - y0, 1), 1)
        return [((z, min(z + dz, z1)), (y0, y1), (x0, x1)) for z in range(z0, z1, dz)]
    return [((z, z + 1), (y, min(y + rows, y1)), (x0, x1)) for z in range(z0, z1) for y in range(y0, y1, rows)]


def _toggle(volume: Volume, user: Any, role: Role, uid: str, *, active: bool) -> StrokeOutcome:
    if role < Role.ANNOTATOR:
        raise _refuse("viewers cannot undo", code="forbidden", status=403)
    uid = _uuid_text(uid)
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
            version = layer_bump(layer)
        for part in _parts(box):
            _write(volume, layer, [(part, layer_replay(volume, layer.name, part))])
    broadcast(volume_group(volume.pk), {"type": "redo" if active else "undo", "uuid": uid, "layer": layer.name,
                                        "version": version, "user": getattr(user, "username", "")})
    signals.audit(volume, user, "stroke_redo" if active else "stroke_undo", layer=layer.name, detail={"uuid": uid})
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
    dtype = _region_io(volume, name).dtype
    outcome = None
    with layer_lock(volume, name):
        for z, plane in slices.items():
            if plane.shape != tuple(volume.shape[1:]):
                raise ValueError(f"slice {z} has shape {plane.shape}, the layer's slices are {volume.shape[1:]}")
            box = raster.plane_box("z", int(z), (0, plane.shape[0]), (0, plane.shape[1]))
            after = raster.from_plane(plane.astype(dtype), "z")
            [outcome] = _record(volume, layer, [_Effect(
                uid=str(uuidlib.uuid4()), user=user, axis="z", index=int(z), mode=Stroke.Mode.REPLACE, value=0,
                radius=0, points=[], box=box, mask=np.ones(after.shape, bool), after=after)])
    return outcome.version if outcome else layer.version


def layer_replace_blocks(volume: Volume, layer: LabelLayer, blocks: Iterable[tuple[raster.Box, np.ndarray, np.ndarray]],
                         *, uid: str, user: Any = None) -> StrokeOutcome:
    """Log and apply ONE stroke of mode "replace" given block by block: a label import.

    `blocks` yields (box, mask, after): in `box`, the voxels of the bool `mask` become
    `after` (both shaped like the box). Each block is logged (mask, after and the layer's
    before, compressed) as it comes, so memory holds one block. The stroke stays inactive
    until every block is logged; an exception from `blocks` deletes it, leaving the layer
    and the log as they were. Then, as for any stroke, the row turns active (one version)
    before the chunks are written from the log. Undo, redo and replay treat it like any
    other stroke (``layer_replay`` reads only the blocks a box touches).
    """
    io = _region_io(volume, layer.name)
    with layer_lock(volume, layer.name):
        (z0, z1), (y0, y1), (x0, x1) = ((0, n) for n in volume.shape)
        stroke = Stroke.objects.create(
            layer=layer, user=user if getattr(user, "is_authenticated", False) else None, uuid=uid, axis="z",
            index=0, mode=Stroke.Mode.REPLACE, value=0, radius=0, points=[], z0=z0, z1=z1, y0=y0, y1=y1, x0=x0,
            x1=x1, mask=b"", after=None, before=b"", active=False, version=layer.version)
        top = 0
        try:
            for box, mask, after in blocks:
                after = after.astype(io.dtype, copy=False)
                (bz0, bz1), (by0, by1), (bx0, bx1) = box
                StrokeBlock.objects.create(stroke=stroke, z0=bz0, z1=bz1, y0=by0, y1=by1, x0=bx0, x1=bx1,
                                           mask=raster.pack_mask(mask), after=raster.pack_array(after),
                                           before=raster.pack_array(io.read(box)))
                top = max(top, int(after[mask].max(initial=0)))
        except BaseException:
            stroke.delete()
            raise
        with transaction.atomic():
            version = layer_bump(layer, max_value=top)
            Stroke.objects.filter(pk=stroke.pk).update(active=True, version=version)
        for block in stroke.blocks.iterator():
            box = _box_of(block)  # type: ignore[arg-type]
            mask = raster.unpack_mask(block.mask, _shape(box))
            current = io.read(box)
            current[mask] = raster.unpack_array(block.after, _shape(box), io.dtype)[mask]
            _write(volume, layer, [(box, current)])
    broadcast(volume_group(volume.pk), {
        "type": "stroke", "version": version,
        "stroke": {"uuid": uid, "layer": layer.name, "axis": "z", "index": 0, "points": [], "radius": 0,
                   "value": 0, "mode": Stroke.Mode.REPLACE, "source": "import", "user": getattr(user, "username", "")}})
    return StrokeOutcome(uuid=uid, version=version)


def slice_mark_complete(volume: Volume, user: Any, role: Role, *, layer: str = LayerName.MANUAL, axis: Any, index: Any,
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
    signals.audit(volume, user, "slice_complete" if complete else "slice_incomplete", layer=label_layer.name,
                  detail={"axis": axis, "index": index})
    broadcast(volume_group(volume.pk), {"type": "mark_complete", "axis": axis, "index": index,
                                        "complete": bool(complete), "user": getattr(user, "username", "")})


def layer_value_at(volume: Volume, layer_name: str, z: int, y: int, x: int) -> int:
    """The label at one voxel (the viewer's picker)."""
    if layer_get(volume, layer_name) is None:
        raise _refuse(f"this volume has no layer {layer_name!r}", code="unknown_layer", status=404)
    if not all(0 <= v < n for v, n in zip((z, y, x), volume.shape)):
        raise _refuse(f"voxel ({z}, {y}, {x}) is off the volume", code="off_volume")
    return int(_region_io(volume, layer_name).read(((z, z + 1), (y, y + 1), (x, x + 1)))[0, 0, 0])


def stroke_accept_prediction(volume: Volume, user: Any, role: Role, data: Mapping[str, Any], *,
                             source: str = LayerName.PREDICTION) -> StrokeOutcome:
    """Copy the labels of layer `source` under a brush gesture into an editable layer.

    `data` is a stroke payload (uuid, layer (default "manual"), axis, index, points,
    radius). Logged as one stroke of mode "replace" whose `after` holds the copied
    labels, so undo, redo and replay treat it like painting; voxels where `source` is 0
    are left as they were. A repeated UUID is a no-op.
    """
    uid, seen = _claim_uuid(volume, role, data)
    if seen is not None:
        return seen
    layer = _editable_layer(volume, data.get("layer", LayerName.MANUAL))
    if layer_get(volume, source) is None:
        raise _refuse(f"this volume has no layer {source!r}", code="unknown_layer", status=404)
    gesture = _gesture({**data, "mode": Stroke.Mode.PAINT})
    _validate(gesture, volume)
    with layer_lock(volume, layer.name):
        rows, cols, mask2d = raster.gesture_mask(gesture, volume.shape)
        box = raster.plane_box(gesture.axis, gesture.index, rows, cols)
        dtype = _region_io(volume, layer.name).dtype
        copied = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), source, 0)[raster.box_slices(box)])
        mask = raster.from_plane(mask2d, gesture.axis) & (copied != 0)
        after = np.where(mask, copied, 0).astype(dtype)
        [outcome] = _record(volume, layer, [_Effect(
            uid=uid, user=user, axis=gesture.axis, index=gesture.index, mode=Stroke.Mode.REPLACE, value=0,
            radius=gesture.radius, points=[list(p) for p in gesture.points], box=box, mask=mask, after=after)])
    broadcast(volume_group(volume.pk), {
        "type": "stroke", "version": outcome.version,
        "stroke": {"uuid": uid, "layer": layer.name, "axis": gesture.axis, "index": gesture.index,
                   "points": [list(p) for p in gesture.points], "radius": gesture.radius, "value": 0,
                   "mode": Stroke.Mode.REPLACE, "source": source, "user": getattr(user, "username", "")}})
    return outcome


__all__ = ["StrokeOutcome", "layer_replace_blocks", "layer_replay", "layer_value_at",
           "layer_write_slices", "slice_mark_complete", "stroke_accept_prediction", "stroke_apply", "stroke_redo",
           "stroke_undo", "strokes_apply"]
