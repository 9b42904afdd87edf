"""Pretrain: a project's ResUNet encoder learned from the unlabeled voxels of all its volumes, as a background job.

Writes live here (`encoder_pretrain` queues, `encoder_pretrain_run` runs); the science is
segmentation.core.pretrain. The job reads every ready volume's image (level 0) and no label
layer; it uses the settings the training defaults choose for the project's largest volume, so
a Retrain from scratch of a volume of that voxel size fits the encoder. The weights land in
models/encoder-job-<job id>.pt; the latest succeeded pretrain job of the project names the
encoder that Retrain starts from (`retrain_encoder`), recorded in the version's config["encoder"].
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from annotations.imaging import omezarr
from annotations.models import Project, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobBusy, JobCancelled, JobContext, job_create
from segmentation.job_kinds import PRETRAIN
from segmentation.modelloop.storage import job_weights_remove, pretrain_encoder_path
from segmentation.volume_jobs import store_result

if TYPE_CHECKING:
    from segmentation.core.training import TrainConfig

MAX_MINUTES = 240.0


def pretrain_leftovers_remove(job: Job) -> list[Path]:
    """Delete the encoder file (and its temporary file) of a pretrain job that did not succeed.

    The reaper calls this when it fails a job whose worker died; the job's own exception path
    does the same. Returns the paths removed."""
    if Job.objects.filter(pk=job.pk, state=Job.State.SUCCEEDED).exists():
        return []
    return job_weights_remove(pretrain_encoder_path(job))


def encoder_pretrain(project: Project, user: Any, *, minutes: float = 10.0, max_steps: int | None = None,
                     config: Mapping[str, Any] | None = None, enqueue: Any = None) -> Job:
    """Queue a pretraining of the project's encoder on all its ready volumes (a `pretrain` job).

    ``config``: network and patch settings over the defaults, as a Retrain's request names them
    (a Retrain uses the encoder only when its network and scale are the same)."""
    from segmentation.modelloop.retrain import _config  # retrain imports this module: not at the top
    if not 0 < float(minutes) <= MAX_MINUTES:
        raise ApplicationError(f"minutes must be in (0, {MAX_MINUTES:g}], got {minutes:g}", code="invalid")
    volumes = list(Volume.objects.filter(project=project, state=Volume.State.READY).order_by("pk")
                   .values_list("pk", flat=True))
    if not volumes:
        raise ApplicationError("the project has no ready volume to pretrain on", code="volume_not_ready",
                               status_code=409)
    busy = Job.objects.filter(project=project, kind=PRETRAIN, state__in=Job.ACTIVE).first()
    if busy is not None:  # one per project; a project job holds no volume lock to settle a race
        raise JobBusy(busy)
    params: dict[str, Any] = {"minutes": float(minutes), "volumes": volumes, "config": _config(config)}
    if max_steps is not None:
        params["max_steps"] = int(max_steps)
    if enqueue is None:
        from segmentation.modelloop.tasks import pretrain_task

        def enqueue(job_id: int) -> None:
            pretrain_task.delay(job_id)
    return job_create(kind=PRETRAIN, project_id=project.pk, user=user, params=params, enqueue=enqueue)


def encoder_pretrain_run(ctx: JobContext) -> Path:
    """The pretrain job's work: learn the encoder from the volumes' images and store it."""
    from segmentation.core.defaults import training_defaults
    from segmentation.core.encoder import save_encoder
    from segmentation.core.modelfile import resolve_device
    from segmentation.core.pretrain import PretrainConfig, pretrain
    from segmentation.core.training import TrainProgress

    job = ctx.job
    params = job.params
    volumes = list(Volume.objects.filter(pk__in=params["volumes"], state=Volume.State.READY).order_by("pk"))
    if not volumes:
        raise ApplicationError("no volume of the job is ready any more", code="volume_not_ready")
    images = [omezarr.open_level(volume_zarr_path(v), 0) for v in volumes]
    largest = max(zip(volumes, images), key=lambda vi: math.prod(vi[1].shape))[0]
    defaults = training_defaults(largest.voxel_size_nm, resolve_device("auto"))
    config = PretrainConfig.like(defaults.config(**params.get("config", {})), max_steps=params.get("max_steps"))
    minutes = float(params["minutes"])
    last_beat = [time.monotonic()]

    def on_progress(p: TrainProgress) -> None:
        store_result(ctx, {"phase": "pretraining", "step": p.step, "loss": p.loss, "eta_s": round(p.eta_s, 1)})
        ctx.progress(0.05 + 0.9 * min(1.0, p.elapsed_s / (minutes * 60.0)),
                     f"step {p.step} · reconstruction loss {p.loss:.4f} · ETA {p.eta_s:.0f} s")

    def should_stop() -> bool:
        now = time.monotonic()  # polled every step: touch the database at most once a second
        if now - last_beat[0] < 1.0:
            return False
        last_beat[0] = now
        return ctx.cancel_requested()

    ctx.progress(0.02, f"pretraining on {len(volumes)} volume(s), no labels")
    encoder = pretrain(images, names=[f"volume {v.pk}" for v in volumes], config=config, minutes=minutes,
                       device="auto", on_progress=on_progress, should_stop=should_stop)
    if encoder.meta["stopped"] == "cancelled" or ctx.cancel_requested():
        raise JobCancelled()
    encoder.meta.update(job=job.pk, project=job.project_id, volumes=[v.pk for v in volumes],
                        voxel_size_nm=largest.voxel_size_nm, defaults=defaults.to_dict())
    path = pretrain_encoder_path(job)
    try:
        save_encoder(path, encoder)
    except BaseException:
        pretrain_leftovers_remove(job)
        raise
    job.result = {"phase": "done", "encoder": path.relative_to(Path(settings.MEDIA_ROOT)).as_posix(),
                  "steps": encoder.meta["steps"], "objective": encoder.meta["objective"],
                  "loss_first": encoder.meta["loss_first"], "loss_last": encoder.meta["loss_last"],
                  "volumes": [v.pk for v in volumes], "scale": encoder.scale, "in_slices": encoder.config.in_slices}
    job.message = f"encoder: {encoder.meta['steps']} steps on {len(volumes)} volume(s)"
    return path


def retrain_encoder(project_id: int, config: TrainConfig) -> tuple[Path | None, dict[str, Any] | None]:
    """The project's latest pretrained encoder for a new model of ``config``, and what to record.

    Returns ``(path, record)``: the encoder file to start from (None when there is none, or it
    does not fit ``config``'s network and scale) and the record for the version's
    config["encoder"] (None when the project has no encoder; ``skipped`` says why one was not used).
    """
    from segmentation.core.encoder import encoder_mismatch, load_encoder
    from segmentation.core.resunet import ResUNetConfig

    for job in Job.objects.filter(project_id=project_id, kind=PRETRAIN, state=Job.State.SUCCEEDED).order_by("-finished", "-pk"):
        path = pretrain_encoder_path(job)
        if not path.is_file():
            continue
        encoder = load_encoder(path)
        record: dict[str, Any] = {"job": job.pk, "file": path.relative_to(Path(settings.MEDIA_ROOT)).as_posix(),
                                  "objective": encoder.meta.get("objective"), "steps": encoder.meta.get("steps"),
                                  "volumes": encoder.meta.get("volumes")}
        why = encoder_mismatch(encoder, ResUNetConfig(config.in_slices, 1, config.base_width, config.depth), config.scale)
        if why:
            return None, {**record, "skipped": why}
        return path, record
    return None, None


__all__ = ["MAX_MINUTES", "encoder_pretrain", "encoder_pretrain_run", "pretrain_leftovers_remove", "retrain_encoder"]
