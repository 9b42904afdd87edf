"""Job lifecycle: create, claim, report progress, finish, cancel, reap.

Tasks never touch Job rows directly; they run their work inside `job_running`, which
claims the job atomically (two workers never run the same job), keeps a heartbeat,
turns exceptions into a failed state with a message, and pushes every change to the
project's websocket group. A job whose worker died stops beating, and a queued job whose
queue message was lost is never claimed; `jobs_reap_stale` (run by Celery beat, never by a
read) marks both failed and runs the cleanup its kind registered.

At most one job per (volume, lock key) is queued or running: a partial unique index
enforces it (see Job.Meta), so two requests in flight cannot both start the same work.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.registry import kind_find, kind_get, kinds_on_queue
from emportal.realtime import broadcast, project_group, volume_group

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10


class JobCancelled(Exception):
    """Raised inside a running job when someone pressed Cancel."""


class JobNotClaimed(Exception):
    """The job was already claimed, finished or cancelled: do nothing."""


def job_payload(job: Job) -> dict[str, Any]:
    """A job as the API and the sockets show it."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "message": job.message,
        "error_code": job.error_code,
        "volume": job.volume_id,
        "result": job.result,
        "created": job.created.isoformat() if job.created else None,
        "finished": job.finished.isoformat() if job.finished else None,
    }


def _emit(job: Job) -> None:
    """Send the job's state to its project's sockets and, for a job of a volume, the volume's."""
    event = {"type": "job", "job": job_payload(job)}
    broadcast(project_group(job.project_id), event)
    if job.volume_id:
        broadcast(volume_group(job.volume_id), event)


def job_lock_key(kind: str, params: dict[str, Any] | None = None) -> str:
    """The key at most one active job of a volume may hold: the kind, and for a kind locked by
    its parameters also those (two reports over different layers may run side by side)."""
    if kind_get(kind).lock_by_params:
        digest = hashlib.sha256(json.dumps(params or {}, sort_keys=True).encode()).hexdigest()[:16]
        return f"report:{digest}"
    return kind


class JobBusy(ApplicationError):
    """The volume already has a queued or running job with this lock key (HTTP 409)."""

    def __init__(self, busy: Job) -> None:
        super().__init__(f"a {busy.kind} job of this volume is already {busy.state} (job {busy.pk})",
                         code="job_running", status_code=409, detail={"job": job_payload(busy)})
        self.job = busy


def job_active(volume_id: int, lock_key: str) -> Job | None:
    return Job.objects.filter(volume_id=volume_id, lock_key=lock_key, state__in=Job.ACTIVE).first()


def job_create(*, kind: str, project_id: int, volume_id: int | None = None, user: Any = None,
               params: dict[str, Any] | None = None, enqueue: Callable[[int], None] | None = None,
               reuse_active: bool = False) -> Job:
    """Create a queued job; `enqueue(job_id)` runs after the transaction commits.

    `kind` must be registered (UnknownJobKind otherwise). A job of a volume takes that
    volume's lock key for its kind (`job_lock_key`). When
    another job holds it, the running one is returned with `reuse_active`, else JobBusy
    is raised. The unique index decides, so this holds for requests racing each other.
    """
    kind_get(kind)  # an unknown kind is refused before anything is written
    key = job_lock_key(kind, params) if volume_id is not None else ""
    for attempt in range(2):
        try:
            with transaction.atomic():
                job = Job.objects.create(kind=kind, project_id=project_id, volume_id=volume_id,
                                         created_by=user if user and user.is_authenticated else None,
                                         params=params or {}, message="queued", lock_key=key)
            break
        except IntegrityError:
            busy = job_active(volume_id, key) if key and volume_id is not None else None
            if busy is None and attempt == 0 and key:
                continue  # the holder finished between our INSERT and this read: try once more
            if busy is None:
                raise
            if reuse_active:
                return busy
            raise JobBusy(busy) from None
    if enqueue is not None:
        transaction.on_commit(lambda: enqueue(job.pk))
    transaction.on_commit(lambda: _emit(job))
    return job


def _claim(job_id: int) -> Job:
    now = timezone.now()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED, cancel_requested=False).update(
        state=Job.State.RUNNING, started=now, heartbeat=now, worker=worker, message="started")
    if not claimed:
        raise JobNotClaimed(job_id)
    job = Job.objects.get(pk=job_id)
    _emit(job)
    return job


@dataclass
class JobContext:
    """What a running task sees: progress reporting and a cancel check."""

    job: Job
    on_progress: Callable[[float], None] | None = None

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (0..1); raises JobCancelled if a cancel was requested."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        updates: dict[str, Any] = {"progress": fraction, "heartbeat": timezone.now()}
        if message is not None:
            updates["message"] = message[:500]
        Job.objects.filter(pk=self.job.pk).update(**updates)
        for key, value in updates.items():
            setattr(self.job, key, value)
        if self.on_progress is not None:
            self.on_progress(fraction)
        if self.cancel_requested():
            raise JobCancelled()
        _emit(self.job)

    def cancel_requested(self) -> bool:
        return Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()

    def log(self, line: str) -> None:
        self.job.log += line.rstrip() + "\n"
        Job.objects.filter(pk=self.job.pk).update(log=self.job.log)


def _beat(job_id: int, stop: threading.Event) -> None:
    from django.db import connection

    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(heartbeat=timezone.now())
            except DatabaseError as exc:  # a busy database must not stop the beat (the reaper would kill the job)
                log.warning("heartbeat of job %s missed: %s", job_id, exc)
    finally:
        connection.close()


def _finish(job: Job, state: str, *, message: str, error_code: str = "",
            result: dict[str, Any] | None = None) -> None:
    job.state = state
    job.message = message[:500]
    job.error_code = error_code
    job.finished = timezone.now()
    if state == Job.State.SUCCEEDED:
        job.progress = 1.0
    if result is not None:
        job.result = result
    # Only a job still running may be finished here: the reaper may have failed it already.
    Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        state=job.state, message=job.message, error_code=error_code, finished=job.finished,
        progress=job.progress, result=job.result, log=job.log)
    _emit(job)


@contextmanager
def job_running(job_id: int) -> Iterator[JobContext]:
    """Claim `job_id` and run the body as that job.

    The body stores its outcome in ``ctx.job.result``; leaving normally marks the job
    succeeded, JobCancelled marks it cancelled, any other exception marks it failed with
    the exception's message. A refusal of the user's input (ApplicationError keeps its code,
    ValueError is "invalid_input") is told as such; anything else, OSError and KeyError
    included, is a fault of the server: "internal", logged with its traceback.
    """
    job = _claim(job_id)
    stop = threading.Event()
    beater = threading.Thread(target=_beat, args=(job.pk, stop), daemon=True)
    beater.start()
    ctx = JobContext(job)
    try:
        yield ctx
    except JobCancelled:
        _finish(job, Job.State.CANCELLED, message="cancelled")
    except ApplicationError as exc:
        ctx.log(traceback.format_exc())
        _finish(job, Job.State.FAILED, message=exc.message, error_code=exc.code)
    except ValueError as exc:
        ctx.log(traceback.format_exc())
        _finish(job, Job.State.FAILED, message=str(exc) or type(exc).__name__, error_code="invalid_input")
    except Exception as exc:  # noqa: BLE001 - every failure must end the job, not leave it running
        log.exception("job %s failed", job.pk)
        ctx.log(traceback.format_exc())
        _finish(job, Job.State.FAILED, message=f"internal error: {exc}", error_code="internal")
    else:
        _finish(job, Job.State.SUCCEEDED, message=job.message if job.message != "started" else "done",
                result=job.result)
    finally:
        stop.set()


def job_cancel(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next progress report."""
    if job.state == Job.State.QUEUED:
        Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
            state=Job.State.CANCELLED, cancel_requested=True, finished=timezone.now(), message="cancelled")
    elif job.state == Job.State.RUNNING:
        Job.objects.filter(pk=job.pk).update(cancel_requested=True, message="cancelling")
    job.refresh_from_db()
    _emit(job)
    return job


def jobs_reap_stale(*, now: Any = None) -> int:
    """Mark failed the running jobs whose heartbeat stopped and the queued jobs whose queue
    message was lost (`_queued_lost`); returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    reaped = 0
    for job in list(Job.objects.filter(state=Job.State.RUNNING, heartbeat__lt=cutoff)):
        reaped += _reap(job, Job.objects.filter(heartbeat__lt=cutoff), now=now, error_code="worker_lost",
                        message=f"the worker stopped responding (no heartbeat for {settings.JOB_STALE_SECONDS} s)")
    waited = now - timedelta(seconds=settings.JOB_QUEUED_SECONDS)
    for job in _queued_lost(waited, now - timedelta(seconds=settings.JOB_STALE_SECONDS)):
        reaped += _reap(job, Job.objects.all(), now=now, error_code="queue_lost",
                        message=f"no worker took this job in {settings.JOB_QUEUED_SECONDS} s (its queue message "
                                "was lost, or no worker is running): start it again")
    return reaped


def _queued_lost(waited: Any, recent: Any) -> list[Job]:
    """Queued jobs created before `waited` that no worker will take.

    A queue is worked in order, so such a job is lost when a later job of its queue has
    started, or when its queue is idle: nothing of it running and nothing finished since
    `recent` (a worker between two jobs is not idle). A job waiting behind a long retrain
    is neither, and stays queued.
    """
    lost: list[Job] = []
    for job in Job.objects.filter(state=Job.State.QUEUED, created__lt=waited):
        kind = kind_find(job.kind)
        queue = kinds_on_queue(kind.queue) if kind is not None else [job.kind]
        same_queue = Job.objects.filter(kind__in=queue).exclude(pk=job.pk)
        overtaken = same_queue.filter(created__gt=job.created, started__isnull=False).exists()
        busy = (same_queue.filter(state=Job.State.RUNNING).exists()
                or same_queue.filter(finished__gte=recent).exists())
        if overtaken or not busy:
            lost.append(job)
    return lost


def _reap(job: Job, still: Any, *, now: Any, error_code: str, message: str) -> int:
    # Conditional on the state it was read in: a worker that claims or finishes it first wins.
    updated = still.filter(pk=job.pk, state=job.state).update(
        state=Job.State.FAILED, finished=now, error_code=error_code, message=message)
    if not updated:
        return 0
    job.refresh_from_db()
    _after_failure(job)
    _emit(job)
    return 1


def _after_failure(job: Job) -> None:
    """Leave nothing half-done behind a job whose worker died (its own cleanup never ran):
    run the `on_worker_lost` its kind registered, if any. A cleanup that fails is logged,
    never raised, so the reaper goes on with the other jobs."""
    kind = kind_find(job.kind)
    if kind is None:
        log.warning("job %s of unregistered kind %r failed without cleanup", job.pk, job.kind)
        return
    cleanup = kind.on_worker_lost
    if cleanup is None:
        return
    try:
        cleanup(job)
    except Exception:  # noqa: BLE001 - one job's cleanup must not stop the reaper
        log.exception("cleanup after the failure of job %s failed", job.pk)
