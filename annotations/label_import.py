"""Label import: a label volume made by another tool, into a label layer of a volume.

A lab's existing labels (TIFF, OME-Zarr/NGFF labels, HDF5, MRC) come in as ONE logged
stroke of mode "replace" (``strokes.layer_replace_blocks``), so undo, redo, replay and the
audit trail treat them like painting. Class labels go through a mapping of the file's
values to the project's classes ({1: "mitochondrion", 2: "nucleus"}); a non-zero value the
mapping does not name refuses the import with the list of such values, unless it is mapped
to 0 ("ignore"). Cell instance labels keep their values as cell ids. The file is read block
by block (``Source.read_region``), never whole; what is refused changes nothing.

By default ("merge") voxels where the file holds 0 (or a value mapped to 0) keep what the
layer holds; with ``mode="replace"`` the layer becomes the file, zeros included.
"""
from __future__ import annotations

import re
import shutil
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from annotations import layers, signals, strokes
from annotations.imaging import omezarr, readers, validation
from annotations.job_kinds import LABELS
from annotations.layer_names import LayerName
from annotations.models import LabelClass, LabelLayer, Stroke, Volume
from annotations.services import upload_store
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create, job_running

MODES = ("merge", "replace")
KINDS = (LabelLayer.Kind.LABELS, LabelLayer.Kind.INSTANCES)
IGNORE_WORDS = ("0", "ignore", "none", "unlabeled", "unlabelled")
# Layer names end up in tile URLs (<slug:layer>) and NGFF group names.
_LAYER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")
# Voxels of one block read from the file: its memory is a few of these (source, mapped, mask).
BLOCK_VOXELS = 2**22
_LISTED = 20  # unmapped values named in a refusal


@dataclass
class LabelImportResult:
    """What a finished label import reports (the job's result)."""

    stroke: str
    layer: str
    kind: str
    mode: str
    voxels: int  # non-zero voxels written
    counts: dict[str, int] = field(default_factory=dict)  # per class name or "cells": voxels

    def as_dict(self) -> dict[str, Any]:
        return {"stroke": self.stroke, "layer": self.layer, "kind": self.kind, "mode": self.mode,
                "voxels": self.voxels, "counts": self.counts}


def _refuse(message: str, code: str = "invalid_labels", status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status)


# --- the mapping ---------------------------------------------------------------------

def label_mapping_parse(spec: str | Mapping[Any, Any] | None, classes: Mapping[str, int]) -> dict[int, int]:
    """{file value: class value} from "1=mitochondrion,2=nucleus" or {"1": "mitochondrion"}.

    A class is named by its name (any case) or its value; 0 / "ignore" maps a value to 0.
    `classes` is {name: value} of the project's semantic classes. Refuses unknown classes,
    values that are not integers and a value mapped twice, naming them.
    """
    if spec is None or spec == "":
        return {}
    if isinstance(spec, str):
        pairs: list[tuple[Any, Any]] = []
        for part in filter(None, (p.strip() for p in re.split(r"[,;\n]", spec))):
            key, sep, target = part.partition("=")
            if not sep:
                raise _refuse(f"mapping entry {part!r} is not value=class")
            pairs.append((key.strip(), target.strip()))
    elif isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        raise _refuse("the mapping must be an object {value: class} or text like 1=mitochondrion,2=nucleus")
    by_name = {name.lower(): value for name, value in classes.items()}
    known = set(classes.values())
    out: dict[int, int] = {}
    for key, target in pairs:
        try:
            if isinstance(key, bool) or isinstance(key, float):
                raise ValueError
            value = int(str(key).strip())
        except ValueError:
            raise _refuse(f"file value {key!r} in the mapping is not an integer") from None
        if value in out:
            raise _refuse(f"file value {value} is mapped twice")
        out[value] = _class_value(target, by_name, known, classes)
    return out


def _class_value(target: Any, by_name: Mapping[str, int], known: set[int], classes: Mapping[str, int]) -> int:
    text = str(target).strip().lower()
    if text in IGNORE_WORDS:
        return 0
    if text in by_name:
        return by_name[text]
    if not isinstance(target, bool) and text.isdigit() and int(text) in known:
        return int(text)
    names = ", ".join(f"{n} ({v})" for n, v in sorted(classes.items(), key=lambda kv: kv[1]))
    raise _refuse(f"{target!r} is not a class of this project; its classes are {names}, or 0 to ignore",
                  code="unknown_class")


def _project_classes(volume: Volume) -> dict[str, int]:
    return dict(LabelClass.objects.filter(project_id=volume.project_id, kind=LabelClass.Kind.SEMANTIC)
                .values_list("name", "value"))


def map_block(block: np.ndarray, mapping: Mapping[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map one block of file labels to layer values.

    Parameters
    ----------
    block : ndarray, shape (Z, Y, X), any integer or integral float dtype
    mapping : {file value: layer value}, or None to keep the values (cell ids)

    Returns
    -------
    mapped : ndarray, shape of `block`, int64
    values : ndarray, 1D, the distinct file values in `block`
    unmapped : ndarray, 1D, the non-zero file values `mapping` does not name (empty for None)

    Example: ``map_block(np.array([[[0, 1, 2]]]), {1: 4})`` gives mapped [[[0, 4, 0]]]
    and unmapped [2].
    """
    if block.dtype.kind == "f":
        bad = ~np.isfinite(block) | (block != np.round(block))
        if bad.any():
            raise ValueError(f"the file holds non-integer labels (e.g. {block[bad].flat[0]!r}); labels are integers")
    values, inverse = np.unique(block, return_inverse=True)
    values = values.astype(np.int64)
    if mapping is None:
        return values[inverse].reshape(block.shape), values, values[:0]
    table = np.array([mapping.get(int(v), 0) for v in values], np.int64)
    unmapped = values[[int(v) != 0 and int(v) not in mapping for v in values]] if len(values) else values
    return table[inverse].reshape(block.shape), values, unmapped


# --- opening the file ----------------------------------------------------------------

def _open_labels(path: Path, dataset: str | None, *, root: Path | None, shown_as: str) -> readers.Source:
    """Open a label file; an OME-Zarr with NGFF labels opens its label group (the only one,
    or the one `dataset` names: "cells" or "labels/cells")."""
    labels_dir = path / "labels"
    if path.is_dir() and labels_dir.is_dir():
        names = sorted(d.name for d in labels_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
        wanted = (dataset or "").removeprefix("labels/").strip("/")
        if not wanted and len(names) == 1:
            wanted = names[0]
        if not wanted:
            raise ValueError(f"{shown_as} holds several label groups ({', '.join(names)}); name one as dataset")
        if wanted not in names:
            raise ValueError(f"{shown_as} has no label group {wanted!r}; it has {', '.join(names) or 'none'}")
        path, dataset = labels_dir / wanted, None
    elif dataset and path.is_dir() and (path / dataset).is_dir() and not _is_array(path / dataset):
        path, dataset = path / dataset, None
    try:
        return readers.open_source(path, dataset=dataset, root=root, limits=validation.Limits(dtypes=validation.LABEL_DTYPES))
    except ValueError as exc:
        raise ValueError(str(exc).replace(path.name, shown_as) if path.is_file() else str(exc)) from None


def _is_array(path: Path) -> bool:
    if (path / ".zarray").exists():
        return True
    meta = path / "zarr.json"
    return meta.exists() and '"array"' in meta.read_text()[:4000]


def _check_source(source: readers.Source, volume: Volume, shown_as: str) -> None:
    if tuple(source.shape) != tuple(volume.shape):
        raise ValueError(f"{shown_as} has shape {' x '.join(map(str, source.shape))} (z x y x x) but volume "
                         f"{volume.name!r} is {' x '.join(map(str, volume.shape))}; labels must match the volume "
                         "voxel for voxel")


# --- starting an import --------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    layer: str
    kind: str
    mapping: dict[int, int] | None


def _target(volume: Volume, layer: str, kind: str | None, mapping: Any) -> _Target:
    if volume.state != Volume.State.READY:
        raise _refuse(f"volume is {volume.state}", code="volume_not_ready", status=409)
    if not _LAYER_NAME.match(layer or ""):
        raise _refuse(f"layer name {layer!r} must be 1-50 letters, digits, '-' or '_'", code="invalid_layer")
    existing = volume.layers.filter(name=layer).first()
    if existing is not None:
        if not existing.editable:
            raise _refuse(f"layer {layer!r} is read-only", code="read_only_layer", status=409)
        if kind and kind != existing.kind:
            raise _refuse(f"layer {layer!r} holds {_KIND_WORDS[existing.kind]}, not {_KIND_WORDS.get(kind, kind)}",
                          code="invalid_layer")
        kind = existing.kind
    else:
        known_kind, known_editable = layers.layer_defaults(layer)
        if known_editable is False:
            raise _refuse(f"layer {layer!r} is written by the app only", code="read_only_layer", status=409)
        if kind and known_kind and kind != known_kind:
            raise _refuse(f"layer {layer!r} holds {_KIND_WORDS[known_kind]}, not {_KIND_WORDS.get(kind, kind)}",
                          code="invalid_layer")
        kind = kind or known_kind
    kind = kind or LabelLayer.Kind.LABELS
    if kind not in KINDS:
        raise _refuse(f"kind {kind!r} is not one of {', '.join(KINDS)}", code="invalid_layer")
    if kind == LabelLayer.Kind.INSTANCES:
        if mapping:
            raise _refuse("cell instance labels keep their values as cell ids; give no mapping")
        return _Target(layer, kind, None)
    return _Target(layer, kind, label_mapping_parse(mapping, _project_classes(volume)))


_KIND_WORDS: dict[str, str] = {LabelLayer.Kind.LABELS: "classes", LabelLayer.Kind.INSTANCES: "cell ids"}


def _start(volume: Volume, path: Path, *, user: Any, layer: str, kind: str | None, mapping: Any,
           dataset: str | None, mode: str, remove_source: bool, shown_as: str, root: Path | None,
           enqueue: bool) -> Job:
    """Check everything a header tells (classes, layer, shape) before any job exists; then the job."""
    from annotations.tasks import label_import_task

    try:
        if mode not in MODES:
            raise _refuse(f"mode {mode!r} is not one of {', '.join(MODES)}")
        target = _target(volume, layer, kind, mapping)
        try:
            with _open_labels(path, dataset, root=root, shown_as=shown_as) as source:
                _check_source(source, volume, shown_as)
        except ValueError as exc:
            code = "shape_mismatch" if "labels must match the volume" in str(exc) else "unreadable_source"
            raise _refuse(str(exc), code=code) from None
    except ApplicationError:
        if remove_source:
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    params = {"path": str(path), "layer": target.layer, "kind": target.kind, "dataset": dataset, "mode": mode,
              "mapping": None if target.mapping is None else {str(k): v for k, v in target.mapping.items()},
              "remove_source": remove_source, "shown_as": shown_as, "stroke": str(uuidlib.uuid4()),
              "root": str(root) if root else None}
    return job_create(kind=LABELS, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=(lambda job_id: label_import_task.delay(job_id)) if enqueue else None)


def label_import_from_path(volume: Volume, user_path: str, *, user: Any = None, layer: str = LayerName.MANUAL,
                           kind: str | None = None, mapping: Any = None, dataset: str | None = None,
                           mode: str = "merge") -> Job:
    """Queue the import of a label file or folder inside DATA_ROOT; anything outside is refused."""
    root = Path(settings.DATA_ROOT)
    try:
        path = validation.resolve_inside(root, user_path)
    except ValueError as exc:
        raise _refuse(str(exc), code="path_refused") from None
    if not path.exists():
        raise _refuse(f"{user_path!r} does not exist in the data root", code="not_found")
    return _start(volume, path, user=user, layer=layer, kind=kind, mapping=mapping, dataset=dataset, mode=mode,
                  remove_source=False, shown_as=user_path, root=root, enqueue=True)


def label_import_from_upload(volume: Volume, upload: Any, *, user: Any = None, layer: str = LayerName.MANUAL,
                             kind: str | None = None, mapping: Any = None, dataset: str | None = None,
                             mode: str = "merge") -> Job:
    """Move an uploaded label file (streamed to disk by Django) aside and queue its import;
    refused like a volume upload: unknown file types and files over UPLOAD_MAX_BYTES."""
    target, original = upload_store(upload, stem="labels", hint=" (an OME-Zarr: from the server's data folder)")
    return _start(volume, target, user=user, layer=layer, kind=kind, mapping=mapping, dataset=dataset, mode=mode,
                  remove_source=True, shown_as=original, root=None, enqueue=True)


def label_import_local(volume: Volume, path: Path, *, user: Any = None, layer: str = LayerName.MANUAL,
                       kind: str | None = None, mapping: Any = None, dataset: str | None = None,
                       mode: str = "merge", on_progress: Callable[[float], None] | None = None) -> Job:
    """Import `path` in this process (the import_labels command), recorded as a job."""
    job = _start(volume, path, user=user, layer=layer, kind=kind, mapping=mapping, dataset=dataset, mode=mode,
                 remove_source=False, shown_as=path.name, root=None, enqueue=False)
    with job_running(job.pk) as ctx:
        ctx.on_progress = on_progress
        label_import_run(ctx)
    job.refresh_from_db()
    return job


# --- the job -------------------------------------------------------------------------

def _block_shape(volume: Volume, layer: str) -> tuple[int, int, int]:
    """Blocks of whole label chunks, grown (X, Y, Z in turn) up to BLOCK_VOXELS voxels (or
    parts of a chunk, halved in Y and X, where one chunk is more)."""
    chunks = [int(c) for c in omezarr.open_label_level(volume_zarr_path(volume), layer, 0).chunks]
    shape = list(volume.shape)
    grown = [min(c, n) for c, n in zip(chunks, shape)]
    while int(np.prod(grown)) > BLOCK_VOXELS and max(grown[1:]) > 1:
        axis = 1 if grown[1] >= grown[2] else 2
        grown[axis] = (grown[axis] + 1) // 2
    while True:
        for axis in (2, 1, 0):
            if grown[axis] < shape[axis] and int(np.prod(grown)) * 2 <= BLOCK_VOXELS:
                grown[axis] = min(grown[axis] * 2, shape[axis])
                break
        else:
            return tuple(grown)  # type: ignore[return-value]


def _boxes(shape: tuple[int, int, int], step: tuple[int, int, int]) -> list[tuple[tuple[int, int], ...]]:
    return [((z, min(z + step[0], shape[0])), (y, min(y + step[1], shape[1])), (x, min(x + step[2], shape[2])))
            for z in range(0, shape[0], step[0]) for y in range(0, shape[1], step[1])
            for x in range(0, shape[2], step[2])]


def label_import_run(ctx: JobContext) -> None:
    """The label import job's work: read, check and map the file block by block into one stroke."""
    job = ctx.job
    params = job.params
    assert job.volume_id is not None  # label-import jobs are created with their volume (deleted with it)
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    path, shown_as = Path(params["path"]), params.get("shown_as") or Path(params["path"]).name
    mapping = None if params["mapping"] is None else {int(k): int(v) for k, v in params["mapping"].items()}
    try:
        ctx.progress(0.0, f"reading {shown_as}")
        with _open_labels(path, params.get("dataset"), root=Path(params["root"]) if params.get("root") else None,
                          shown_as=shown_as) as source:
            _check_source(source, volume, shown_as)
            layer = layers.layer_create(volume, params["layer"], kind=params["kind"])
            result = _import_blocks(ctx, volume, layer, source, mapping, mode=params["mode"], uid=params["stroke"],
                                    shown_as=shown_as)
    finally:
        if params.get("remove_source"):
            shutil.rmtree(path.parent, ignore_errors=True)
    signals.audit(volume, job.created_by, "labels_imported", layer=layer.name,
                  detail={"file": shown_as, "uuid": result.stroke, "mode": result.mode, "voxels": result.voxels,
                          "mapping": params["mapping"], "counts": result.counts})
    job.result = {**result.as_dict(), "volume": volume.pk}
    what = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    job.message = f"imported {shown_as} into layer {layer.name}: {result.voxels} labelled voxels" + \
        (f" ({what})" if what else "")


def _import_blocks(ctx: JobContext, volume: Volume, layer: LabelLayer, source: readers.Source,
                   mapping: dict[int, int] | None, *, mode: str, uid: str, shown_as: str) -> LabelImportResult:
    names = {v: n for n, v in _project_classes(volume).items()}
    boxes = _boxes(volume.shape, _block_shape(volume, layer.name))
    counts: dict[int, int] = {}
    unmapped: set[int] = set()
    cells: set[int] = set()
    voxels = 0

    def blocks() -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        nonlocal voxels
        for i, box in enumerate(boxes):
            data = source.read_region(*(v for lohi in box for v in lohi))
            mapped, values, missing = map_block(data, mapping)
            outside = values[(values < 0) | (values > strokes.MAX_INSTANCE_ID)] if mapping is None else values[:0]
            if len(outside):
                raise ValueError(f"{shown_as} holds cell id {int(outside[0])}, outside 0..{strokes.MAX_INSTANCE_ID}")
            unmapped.update(int(v) for v in missing)
            ctx.progress(0.9 * (i + 1) / len(boxes), f"importing {shown_as}: block {i + 1} of {len(boxes)}")
            if unmapped:
                continue  # read on, to name every unmapped value; nothing more is logged
            voxels += int(np.count_nonzero(mapped))
            if mapping is None:
                cells.update(int(v) for v in values if v)
            else:
                found, n = np.unique(mapped[mapped != 0], return_counts=True)
                for v, c in zip(found, n):
                    counts[int(v)] = counts.get(int(v), 0) + int(c)
            mask = np.ones(mapped.shape, bool) if mode == "replace" else mapped != 0
            if mask.any():
                yield box, mask, mapped
        if unmapped:
            listed = ", ".join(map(str, sorted(unmapped)[:_LISTED])) + (" ..." if len(unmapped) > _LISTED else "")
            raise ValueError(f"{shown_as} holds values the mapping does not name: {listed}; map each to a class, "
                             "or to 0 to ignore it")

    outcome = strokes.layer_replace_blocks(volume, layer, blocks(), uid=uid, user=ctx.job.created_by)
    ctx.progress(1.0)
    by_name = ({"cells": len(cells)} if mapping is None
               else {names.get(v, f"class {v}"): n for v, n in sorted(counts.items())})
    return LabelImportResult(stroke=outcome.uuid, layer=layer.name, kind=layer.kind, mode=mode, voxels=voxels,
                             counts=by_name)


def label_import_leftovers_remove(job: Job) -> None:
    """After a worker died mid-import (the reaper): delete the stroke it had not finished
    logging (it turns active only once every block is logged), and the uploaded file."""
    uid = job.params.get("stroke")
    if uid:
        Stroke.objects.filter(uuid=uid, active=False).delete()
    if job.params.get("remove_source"):
        shutil.rmtree(Path(job.params["path"]).parent, ignore_errors=True)
