"""What every job of the segmentation app on a volume shares: the refusals before it is queued
(volume not ready, same kind already running) and its result kept current while it runs."""
from __future__ import annotations

from typing import Any

from annotations.models import Volume
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobBusy, JobContext, job_active, job_lock_key


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


def store_result(ctx: JobContext, result: dict[str, Any]) -> None:
    """Keep the running job's result current in the row, so a page opened later sees it too."""
    ctx.job.result = result
    Job.objects.filter(pk=ctx.job.pk).update(result=result)
