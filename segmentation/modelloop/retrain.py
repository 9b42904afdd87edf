"""Retrain: the ResUNet of a project trained on a volume's labels as a background job.

Writes live here (`model_retrain`, `model_activate`); the Celery task (modelloop/tasks.py)
only claims the job and calls `model_retrain_run`. The science is segmentation.core
(training.train); what the network learns from is modelloop/labels.py.

* a retrain fine-tunes the project's active ModelVersion unless asked to start from
  scratch; the new version becomes active only when training finished, so a cancelled or
  failed run leaves the previous one active.
* approved review items used are recorded in the version's config["trusted"] and covered
  by its labels hash.
* a retrain from scratch starts its encoder from the project's latest pretrained one
  (modelloop/pretrain.py) when the request asks (``pretrained``, default
  PRETRAINED_BY_DEFAULT) and it fits; the version's config["encoder"] records it.
* a retrain writes its weights as models/job-<job id>.pt before the transaction that
  creates the version row; weights of a job that died first are deleted by the reaper.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.models import CompleteSlice, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobCancelled, JobContext, job_create
from emportal.realtime import broadcast, volume_group
from segmentation.core.training_labels import labels_hash
from segmentation.job_kinds import RETRAIN
from segmentation.modelloop.labels import training_labels_for
from segmentation.modelloop.pretrain import retrain_encoder
from segmentation.modelloop.selectors import finite, model_payload
from segmentation.modelloop.storage import job_weights_remove, model_weights_path, retrain_weights_path
from segmentation.models import ModelVersion
from segmentation.volume_jobs import require_not_running, require_ready, store_result

# Keys of TrainConfig a request may set, with their allowed ranges.
CONFIG_LIMITS: dict[str, tuple[int, int]] = {
    "patch": (32, 1024), "batch": (1, 64), "base_width": (4, 64), "depth": (2, 6), "scale": (1, 4),
    "in_slices": (1, 7),
}
MAX_MINUTES = 240.0
#: Whether a Retrain from scratch starts from the project's pretrained encoder unless told
#: otherwise: off, since on the SBEM crop it did not clearly raise Dice (docs/ACCURACY.md).
PRETRAINED_BY_DEFAULT = False


# ---------------------------------------------------------------- leftovers
def retrain_leftovers_remove(job: Job) -> list[Path]:
    """Delete the weights of a failed retrain job that no ModelVersion row refers to.

    A retrain writes ``models/job-<id>.pt`` (through a ``.tmp`` file) before the
    transaction that creates its row; a worker killed in between leaves the file without
    a row. The reaper calls this when it fails the job (the retrain kind's
    ``on_worker_lost``); the job's own exception path does the same. Returns the paths removed.
    """
    if ModelVersion.objects.filter(job_id=job.pk).exists():
        return []
    return job_weights_remove(retrain_weights_path(job))


# ---------------------------------------------------------------- request checks
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
                  pretrained: bool = PRETRAINED_BY_DEFAULT, enqueue: Any = None) -> Job:
    """Queue a retrain of the project's model on this volume's labels (a `retrain` job)."""
    require_ready(volume)
    require_not_running(volume, RETRAIN)
    params: dict[str, Any] = {"minutes": _minutes(minutes), "from_scratch": bool(from_scratch),
                              "config": _config(config), "pretrained": bool(pretrained)}
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ApplicationError(f"max_steps {max_steps!r} is not a positive integer", code="invalid")
        params["max_steps"] = max_steps
    if not from_scratch:
        parent = ModelVersion.objects.filter(project_id=volume.project_id, active=True).first()
        params["parent"] = parent.pk if parent else None
    if enqueue is None:
        from segmentation.modelloop.tasks import retrain_task

        def enqueue(job_id: int) -> None:
            retrain_task.delay(job_id)
    return job_create(kind=RETRAIN, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=enqueue)


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
    complete = sorted(CompleteSlice.objects.filter(layer__volume=volume, layer__name=LayerName.MANUAL, axis="z")
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
    config = defaults.config(finetune=parent is not None, max_steps=params.get("max_steps"), **params.get("config", {}))
    encoder, encoder_record = (retrain_encoder(volume.project_id, config) if parent is None and params.get("pretrained")
                               else (None, None))
    minutes = float(params["minutes"])
    budget = minutes * 60.0
    curve: list[dict[str, Any]] = []
    started = time.monotonic()
    last_beat = [started]

    def state(phase: str, **extra: Any) -> dict[str, Any]:
        return {"phase": phase, "curve": curve, "minutes": minutes, "parent": parent.pk if parent else None,
                **extra}

    def on_progress(p: TrainProgress) -> None:
        curve.append({"step": p.step, "loss": finite(p.loss), "val_dice": finite(p.val_dice),
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
                   config=config, on_progress=on_progress, should_stop=should_stop, encoder=encoder)
    if result.stopped == "cancelled" or ctx.cancel_requested():
        raise JobCancelled()
    ctx.progress(0.96, "saving the model")
    result.model.meta.update(defaults_meta(defaults, voxel_size_nm=volume.voxel_size_nm, overrides=params.get("config", {})))
    zs = sorted(set(result.train_slices) | set(result.val_slices))
    digest = labels_hash(labels, zs, complete, trusted=trusted)
    curve_rows = [{"step": s, "loss": finite(loss), "val_dice": finite(v)} for s, loss, v in result.curve]
    # The weights land under the job's name before the row exists, and the row commits
    # pointing at them: a kill anywhere leaves either a row with its file, or a file
    # without a row that the reaper deletes (retrain_leftovers_remove).
    path = retrain_weights_path(job)
    try:
        save_model(path, result.model)
        model = _model_version_create(job, volume, parent, path, result=result, values=values, parents=parents,
                                      digest=digest, curve_rows=curve_rows, minutes=minutes, cell_name=cell_name,
                                      trusted=trusted, params=params, encoder=encoder_record)
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
                          trusted: list[dict[str, Any]], params: Mapping[str, Any],
                          encoder: dict[str, Any] | None = None) -> ModelVersion:
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
                    "from_scratch": parent is None, "interior_class": cell_name, "encoder": encoder,
                    "scale": result.meta.get("scale", 1), "trusted": trusted,
                    # what training used and prediction applies (TTA), and why: the defaults for the voxel size
                    "patch": result.meta.get("patch"), "batch": result.meta.get("batch"),
                    "in_slices": result.model.config.in_slices, "ema": result.meta.get("ema"),
                    "select_best": result.meta.get("select_best"),
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


__all__ = ["CONFIG_LIMITS", "MAX_MINUTES", "model_activate", "model_retrain", "model_retrain_run",
           "retrain_leftovers_remove"]
