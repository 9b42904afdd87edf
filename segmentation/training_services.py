"""Retrain: the ResUNet of a project trained on a volume's labels as a background job.

Writes live here (`model_retrain`, `model_activate`); the Celery task in tasks_models.py
only claims the job and calls `model_retrain_run`. The science is segmentation.core
(training.train); this module maps the app's rows onto it. Segment (prediction and the
regions to label next) is segment_services.py.

* image: the volume's level 0; labels: the "manual" layer (project class values, 0
  unlabeled), with voxels of painted cells (the "cells" layer, > 0) counted as the cell
  class where the manual layer says nothing or background, so the network learns a
  cell-interior head for the cells job; complete slices from CompleteSlice rows; and
  trusted labels: approved slices / cells of review assignments (annotations/reviews/
  trusted.py) fill the manual layer's unlabeled voxels, recorded in the version's
  config["trusted"] and covered by its labels hash.
* classes: the project's semantic LabelClass rows and their parent links (plus the cell
  class when cells are painted).
* a retrain fine-tunes the project's active ModelVersion unless asked to start from
  scratch; the new version becomes active only when training finished, so a cancelled or
  failed run leaves the previous one active.
* a retrain writes its weights as models/job-<job id>.pt before the transaction that
  creates the version row; weights of a job that died first are deleted by the reaper.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from annotations.defaults import CELLS_LAYER, MANUAL_LAYER
from annotations.imaging import chunkio, omezarr
from annotations.models import CompleteSlice, LabelClass, LabelLayer, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobBusy, JobCancelled, JobContext, job_active, job_create, job_lock_key
from emportal.realtime import broadcast, volume_group
from segmentation.job_kinds import RETRAIN
from segmentation.models import ModelVersion

# Keys of TrainConfig a request may set, with their allowed ranges.
CONFIG_LIMITS: dict[str, tuple[int, int]] = {
    "patch": (32, 1024), "batch": (1, 64), "base_width": (4, 64), "depth": (2, 6), "scale": (1, 4),
    "in_slices": (1, 7),
}
MAX_MINUTES = 240.0


# ---------------------------------------------------------------- paths and payloads
def models_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_weights_path(model: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT) / model.weights


def retrain_weights_path(job: Job) -> Path:
    """Where a retrain job writes its weights: named after the job, not the version row,
    so that weights whose row never committed (the worker died first) can be found."""
    return models_dir() / f"job-{int(job.pk)}.pt"


def retrain_leftovers_remove(job: Job) -> list[Path]:
    """Delete the weights of a failed retrain job that no ModelVersion row refers to.

    A retrain writes ``models/job-<id>.pt`` (through a ``.tmp`` file) before the
    transaction that creates its row; a worker killed in between leaves the file without
    a row. The reaper calls this when it fails the job (segmentation/jobs.py
    ``_after_failure``); the job's own exception path does the same. Returns the paths removed.
    """
    if ModelVersion.objects.filter(job_id=job.pk).exists():
        return []
    final = retrain_weights_path(job)
    removed = []
    for path in (final, final.with_name(final.name + ".tmp")):
        if path.exists():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _finite(value: Any) -> float | None:
    """JSON has no NaN: non-finite numbers become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def model_payload(model: ModelVersion) -> dict[str, Any]:
    """What the API and the panel show of a version."""
    dice = {k: _finite(v) for k, v in (model.val_dice or {}).items()}
    values = [v for v in dice.values() if v is not None]
    return {
        "id": model.pk,
        "project": model.project_id,
        "volume": model.volume_id,
        "parent": model.parent_id,
        "job": model.job_id,
        "active": model.active,
        "classes": model.classes,
        "hierarchy": model.hierarchy,
        "labels_hash": model.labels_hash,
        "labeled_voxels": model.labeled_voxels,
        "curve": model.curve,
        "val_dice": dice,
        "mean_val_dice": round(float(np.mean(values)), 6) if values else None,
        "config": model.config,
        "created_by": model.created_by.username if model.created_by else None,
        "created": model.created.isoformat() if model.created else None,
    }


def models_compare(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Two versions side by side, with the per-class change in validation Dice (b - a)."""
    pa, pb = model_payload(a), model_payload(b)
    classes = sorted(set(pa["val_dice"]) | set(pb["val_dice"]))
    delta = {c: (None if pa["val_dice"].get(c) is None or pb["val_dice"].get(c) is None
                 else round(pb["val_dice"][c] - pa["val_dice"][c], 6)) for c in classes}
    return {"a": pa, "b": pb, "classes": classes, "delta": delta,
            "same_labels": bool(a.labels_hash) and a.labels_hash == b.labels_hash}


# ---------------------------------------------------------------- inputs of training
@dataclass(frozen=True)
class TrustedLabels:
    """Approved labels of a reviewed layer (see annotations/reviews/trusted.py).

    labels : array-like (Z, Y, X), the reviewed layer; kind : "labels" (class values) or
    "instances" (cell ids, trusted as the cell class); slices : approved z slices (all
    their labels are trusted); cells : approved cell ids (their voxels are trusted).
    """

    labels: Any
    kind: str
    slices: frozenset[int] = frozenset()
    cells: frozenset[int] = frozenset()


class TrainingLabels:
    """The manual layer with painted cells as the cell class, read slice by slice.

    An array-like of shape (Z, Y, X) for :func:`segmentation.core.training.train`;
    ``labels[z]`` (or ``labels[z, ys, xs]``) reads the manual layer there and, on slices
    where the cells layer holds ids (key slices, where every cell is painted):

    * puts ``cell_value`` where a cell is painted and the manual layer holds 0 or background
      (background inside a cell means "none of the organelles", which the cell class says too);
    * puts ``background`` where no cell is painted and the manual layer holds 0, since
      every class lies inside a cell.

    Other slices are the manual layer unchanged. Before that, ``trusted`` sources (approved
    review items) fill the voxels where the manual layer holds 0, as if painted there:
    class layers with their values, instance layers with ``cell_value`` (skipped when 0).
    """

    def __init__(self, manual: Any, cells: Any = None, *, cell_value: int = 0, background: int = 0,
                 trusted: Sequence[TrustedLabels] = ()) -> None:
        self.manual, self.cells = manual, cells
        self.cell_value, self.background = int(cell_value), int(background)
        self.shape = tuple(int(s) for s in manual.shape)
        self.dtype = np.dtype(manual.dtype)
        self.ndim = len(self.shape)
        self.trusted = tuple(trusted)
        for source in self.trusted:
            if source.kind not in ("labels", "instances"):
                raise ValueError(f"trusted kind {source.kind!r} is not 'labels' or 'instances'")
            if tuple(int(n) for n in source.labels.shape) != self.shape:
                raise ValueError(f"trusted layer shape {tuple(source.labels.shape)} differs from {self.shape}")

    def _with_trusted(self, z: int, m: np.ndarray) -> np.ndarray:
        for source in self.trusted:
            on_slice = z in source.slices
            if not on_slice and not source.cells:
                continue
            if source.kind == "instances" and not self.cell_value:
                continue
            t = np.asarray(source.labels[z])
            if source.kind == "labels":
                if on_slice:
                    m = np.where((m == 0) & (t != 0), t, m).astype(self.dtype, copy=False)
                continue
            chosen = (t != 0) if on_slice else np.isin(t, list(source.cells))
            m = np.where((m == 0) & chosen, self.cell_value, m).astype(self.dtype, copy=False)
        return m

    def _plane(self, z: int) -> np.ndarray:
        m = self._with_trusted(z, np.asarray(self.manual[z]))
        if self.cells is None:
            return m
        c = np.asarray(self.cells[z])
        if not c.any():
            return m
        open_ = (m == 0) | (m == self.background) if self.background else (m == 0)
        out = np.where((c > 0) & open_, self.cell_value, m)
        if self.background:
            out = np.where((c == 0) & (m == 0), self.background, out)
        return out.astype(self.dtype, copy=False)

    def candidate_slices(self) -> set[int] | None:
        """The slices that may hold a label: those inside chunks any layer read here has on
        disk (None when a layer's storage cannot tell, so every slice may)."""
        found: set[int] = set()
        for array in (self.manual, self.cells, *(source.labels for source in self.trusted)):
            if array is None:
                continue
            stored = chunkio.stored_z_slices(array)
            if stored is None:
                return None
            found |= stored
        return found

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._plane(int(key))
        if isinstance(key, tuple) and key and isinstance(key[0], (int, np.integer)):
            return self._plane(int(key[0]))[key[1:]]
        raise TypeError(f"TrainingLabels reads one z slice at a time, not {key!r}")


def training_classes(volume: Volume, *, with_cells: bool) -> tuple[dict[str, int], dict[str, str | None], str | None]:
    """{name: value}, {name: parent or None} of the project's classes the network learns,
    and the name of the cell (interior) class when it takes part."""
    rows = list(LabelClass.objects.filter(project_id=volume.project_id).select_related("parent"))
    values = {c.name: int(c.value) for c in rows if c.kind == LabelClass.Kind.SEMANTIC}
    cell = next((c for c in rows if c.kind == LabelClass.Kind.INSTANCE), None)
    cell_name = None
    if with_cells and cell is not None and cell.name not in values:
        values[cell.name] = int(cell.value)
        cell_name = cell.name
    parents = {c.name: (c.parent.name if c.parent and c.parent.name in values and c.parent.name != "background"
                        else None)
               for c in rows if c.name in values and c.name != "background"}
    return values, parents, cell_name


def _cells_painted(volume: Volume) -> bool:
    layer = volume.layers.filter(name=CELLS_LAYER).first()
    return layer is not None and layer.max_value > 0


def labels_hash(labels: Any, zs: list[int], complete: list[int], *,
                trusted: Sequence[Mapping[str, Any]] = ()) -> str:
    """sha256 of the labeled slices (index and content), the complete-slice marks and the
    trusted (approved) review items used."""
    digest = hashlib.sha256()
    for z in sorted(zs):
        plane = np.ascontiguousarray(np.asarray(labels[z]))
        digest.update(f"z{z}:{plane.dtype.str}:{plane.shape}".encode())
        digest.update(plane.tobytes())
    digest.update(("complete:" + ",".join(map(str, sorted(complete)))).encode())
    if trusted:
        digest.update(("trusted:" + json.dumps(list(trusted), sort_keys=True)).encode())
    return digest.hexdigest()


def training_labels_for(volume: Volume) -> tuple[TrainingLabels, dict[str, int], dict[str, str | None], str | None,
                                                 list[dict[str, Any]]]:
    """The training labels of a volume: manual, painted cells and approved review items.

    Returns (labels, class values, class parents, cell class name or None, trusted record)
    where the record is ``[{"assignment", "layer", "slices", "cells"}]`` for ModelVersion.config.
    """
    from annotations.reviews.trusted import trusted_sources

    dest = volume_zarr_path(volume)
    trusted = trusted_sources(volume)
    with_cells = _cells_painted(volume) or any(t["kind"] == LabelLayer.Kind.INSTANCES and (t["cells"] or t["slices"])
                                               for t in trusted)
    values, parents, cell_name = training_classes(volume, with_cells=with_cells)
    manual = omezarr.open_label_level(dest, MANUAL_LAYER, 0)
    has_cells_layer = volume.layers.filter(name=CELLS_LAYER).exists()
    cells = omezarr.open_label_level(dest, CELLS_LAYER, 0) if cell_name and has_cells_layer else None
    sources = [TrustedLabels(omezarr.open_label_level(dest, t["layer"], 0), kind=t["kind"],
                             slices=frozenset(t["slices"]), cells=frozenset(t["cells"])) for t in trusted]
    labels = TrainingLabels(manual, cells, cell_value=values.get(cell_name or "", 0),
                            background=values.get("background", 0), trusted=sources)
    record = [{"assignment": t["assignment"], "layer": t["layer"], "slices": t["slices"], "cells": t["cells"]}
              for t in trusted]
    return labels, values, parents, cell_name, record


# ---------------------------------------------------------------- guards
def require_ready(volume: Volume) -> None:
    """Refuse (409, volume_not_ready) a job on a volume that is not ready."""
    if volume.state != Volume.State.READY:
        raise ApplicationError(f"volume {volume.name!r} is {volume.state}, not ready", code="volume_not_ready",
                               status_code=409)


def require_not_running(volume: Volume, kind: str) -> None:
    """Refuse early with the busy job; job_create's unique index settles a race."""
    busy = job_active(volume.pk, job_lock_key(kind))
    if busy is not None:
        raise JobBusy(busy)


def _minutes(value: Any) -> float:
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"minutes {value!r} is not a number", code="invalid") from None
    if not 0 < minutes <= MAX_MINUTES:
        raise ApplicationError(f"minutes must be in (0, {MAX_MINUTES:g}], got {minutes:g}", code="invalid")
    return minutes


def _config(config: Mapping[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in (config or {}).items():
        if key not in CONFIG_LIMITS:
            raise ApplicationError(f"config key {key!r} is not one of {sorted(CONFIG_LIMITS)}", code="invalid")
        lo, hi = CONFIG_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ApplicationError(f"config {key}={value!r} is not an integer in {lo}..{hi}", code="invalid")
        out[key] = value
    return out


# ---------------------------------------------------------------- retrain
def model_retrain(volume: Volume, user: Any, *, minutes: float = 5.0, from_scratch: bool = False,
                  max_steps: int | None = None, config: Mapping[str, Any] | None = None,
                  enqueue: Any = None) -> Job:
    """Queue a retrain of the project's model on this volume's labels (a `retrain` job)."""
    require_ready(volume)
    require_not_running(volume, RETRAIN)
    params: dict[str, Any] = {"minutes": _minutes(minutes), "from_scratch": bool(from_scratch),
                              "config": _config(config)}
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ApplicationError(f"max_steps {max_steps!r} is not a positive integer", code="invalid")
        params["max_steps"] = max_steps
    if not from_scratch:
        parent = ModelVersion.objects.filter(project_id=volume.project_id, active=True).first()
        params["parent"] = parent.pk if parent else None
    if enqueue is None:
        from segmentation.tasks_models import retrain_task

        def enqueue(job_id: int) -> None:
            retrain_task.delay(job_id)
    return job_create(kind=RETRAIN, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=enqueue)


def store_result(ctx: JobContext, result: dict[str, Any]) -> None:
    """Keep the running job's result current in the row, so a page opened later sees it too."""
    ctx.job.result = result
    Job.objects.filter(pk=ctx.job.pk).update(result=result)


def model_retrain_run(ctx: JobContext) -> ModelVersion:
    """The retrain job's work: train, store the weights and a ModelVersion, make it active."""
    from segmentation.core.defaults import defaults_meta, training_defaults
    from segmentation.core.modelfile import resolve_device, save_model
    from segmentation.core.training import TrainProgress, train

    job = ctx.job
    assert job.volume_id is not None  # retrain jobs are created with their volume (deleted with it)
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    params = job.params
    dest = volume_zarr_path(volume)
    image = omezarr.open_level(dest, 0)
    labels, values, parents, cell_name, trusted = training_labels_for(volume)
    complete = sorted(CompleteSlice.objects.filter(layer__volume=volume, layer__name=MANUAL_LAYER, axis="z")
                      .values_list("index", flat=True))
    parent = None
    if not params.get("from_scratch"):
        parent_id = params.get("parent")
        parent = (ModelVersion.objects.filter(pk=parent_id).first() if parent_id
                  else ModelVersion.objects.filter(project_id=volume.project_id, active=True).first())
        if parent is not None and not model_weights_path(parent).is_file():
            raise ValueError(f"the weights of model v{parent.pk} are missing ({parent.weights})")
    # what a user gets: the measured best for this volume's voxel size and this worker's device,
    # under any settings the request named (a fine-tune keeps its parent's scale and input slices)
    defaults = training_defaults(volume.voxel_size_nm, resolve_device("auto"))
    config = defaults.config(max_steps=params.get("max_steps"), **params.get("config", {}))
    minutes = float(params["minutes"])
    budget = minutes * 60.0
    curve: list[dict[str, Any]] = []
    started = time.monotonic()
    last_beat = [started]

    def state(phase: str, **extra: Any) -> dict[str, Any]:
        return {"phase": phase, "curve": curve, "minutes": minutes, "parent": parent.pk if parent else None,
                **extra}

    def on_progress(p: TrainProgress) -> None:
        curve.append({"step": p.step, "loss": _finite(p.loss), "val_dice": _finite(p.val_dice),
                      "elapsed_s": round(p.elapsed_s, 2)})
        store_result(ctx, state("training", eta_s=round(p.eta_s, 1), step=p.step))
        dice = f" · val Dice {p.val_dice:.3f}" if p.val_dice is not None else ""
        loss = f"{p.loss:.4f}" if p.loss is not None and math.isfinite(p.loss) else "—"
        ctx.progress(0.05 + 0.9 * min(1.0, p.elapsed_s / budget),
                     f"step {p.step} · loss {loss}{dice} · ETA {p.eta_s:.0f} s")

    def should_stop() -> bool:
        # polled every step: touch the database at most once a second
        now = time.monotonic()
        if now - last_beat[0] < 1.0:
            return False
        last_beat[0] = now
        return ctx.cancel_requested()

    ctx.progress(0.02, "reading labels" + (f" (fine-tuning v{parent.pk})" if parent else " (from scratch)"))
    store_result(ctx, state("reading"))
    result = train(image, labels, classes=values, hierarchy=parents, minutes=minutes, device="auto",
                   init=model_weights_path(parent) if parent else None, complete_slices=complete,
                   config=config, on_progress=on_progress, should_stop=should_stop)
    if result.stopped == "cancelled" or ctx.cancel_requested():
        raise JobCancelled()
    ctx.progress(0.96, "saving the model")
    result.model.meta.update(defaults_meta(defaults, voxel_size_nm=volume.voxel_size_nm, overrides=params.get("config", {})))
    zs = sorted(set(result.train_slices) | set(result.val_slices))
    digest = labels_hash(labels, zs, complete, trusted=trusted)
    curve_rows = [{"step": s, "loss": _finite(loss), "val_dice": _finite(v)} for s, loss, v in result.curve]
    # The weights land under the job's name before the row exists, and the row commits
    # pointing at them: a kill anywhere leaves either a row with its file, or a file
    # without a row that the reaper deletes (retrain_leftovers_remove).
    path = retrain_weights_path(job)
    try:
        save_model(path, result.model)
        model = _model_version_create(job, volume, parent, path, result=result, values=values, parents=parents,
                                      digest=digest, curve_rows=curve_rows, minutes=minutes, cell_name=cell_name,
                                      trusted=trusted, params=params)
    except BaseException:
        retrain_leftovers_remove(job)
        raise
    mean = model_payload(model)["mean_val_dice"]
    job.result = state("done", model_version=model.pk, val_dice=model_payload(model)["val_dice"],
                       steps=result.steps, stopped=result.stopped)
    job.message = (f"model v{model.pk}: {result.steps} steps ({result.stopped})"
                   + (f", val Dice {mean:.3f}" if mean is not None else ""))
    broadcast(volume_group(volume.pk), {"type": "model", "model": model_payload(model)})
    return model


def _model_version_create(job: Job, volume: Volume, parent: ModelVersion | None, path: Path, *, result: Any,
                          values: dict[str, int], parents: dict[str, str | None], digest: str,
                          curve_rows: list[dict[str, Any]], minutes: float, cell_name: str | None,
                          trusted: list[dict[str, Any]], params: Mapping[str, Any]) -> ModelVersion:
    """The row of a trained version whose weights are at `path`, made the active one."""
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).exists():
            # The reaper failed this job (and may have deleted its weights): publish nothing.
            raise ValueError(f"job {job.pk} is no longer running")
        model = ModelVersion.objects.create(
            project_id=volume.project_id, volume=volume, parent=parent, job_id=job.pk,
            weights=path.relative_to(Path(settings.MEDIA_ROOT)).as_posix(),
            classes=values, hierarchy=parents, labels_hash=digest,
            labeled_voxels=int(result.meta.get("labeled_voxels", 0)), curve=curve_rows,
            val_dice={k: float(v) for k, v in result.val_dice.items()},
            config={"minutes": minutes, "steps": result.steps, "stopped": result.stopped,
                    "seconds": round(result.seconds, 2), "device": result.meta.get("device"),
                    "train_slices": result.train_slices, "val_slices": result.val_slices,
                    "from_scratch": parent is None, "interior_class": cell_name,
                    "scale": result.meta.get("scale", 1), "trusted": trusted,
                    # what training used and prediction applies (TTA), and why: the defaults for the voxel size
                    "patch": result.meta.get("patch"), "batch": result.meta.get("batch"),
                    "in_slices": result.model.config.in_slices, "ema": result.meta.get("ema"),
                    "tta": bool(result.model.meta.get("tta")), "defaults": result.model.meta.get("defaults"),
                    # what prediction uses per head, chosen on the held-out slices (shown beside the Dice)
                    "thresholds": result.model.meta.get("thresholds") or {}, "z_blend": result.model.meta.get("z_blend") or {},
                    **params.get("config", {})},
            created_by=job.created_by)
        ModelVersion.objects.filter(project_id=volume.project_id, active=True).exclude(pk=model.pk).update(active=False)
        ModelVersion.objects.filter(pk=model.pk).update(active=True)
    model.refresh_from_db()
    return model


def model_activate(model: ModelVersion, user: Any) -> ModelVersion:
    """Make `model` the version Segment uses and Retrain fine-tunes."""
    if not model_weights_path(model).is_file():
        raise ApplicationError(f"the weights of model v{model.pk} are missing", code="weights_missing",
                               status_code=409)
    with transaction.atomic():
        ModelVersion.objects.filter(project_id=model.project_id, active=True).exclude(pk=model.pk).update(active=False)
        ModelVersion.objects.filter(pk=model.pk).update(active=True)
    model.refresh_from_db()
    if model.volume_id:
        broadcast(volume_group(model.volume_id), {"type": "model", "model": model_payload(model)})
    return model


__all__ = ["TrainingLabels", "TrustedLabels", "labels_hash", "model_activate", "model_payload", "model_retrain",
           "model_retrain_run", "models_compare", "retrain_leftovers_remove", "retrain_weights_path",
           "training_classes", "training_labels_for"]
