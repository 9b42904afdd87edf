"""Celery tasks of the annotations app: thin wrappers that run a service as a job."""
from __future__ import annotations

from celery import shared_task

from emportal.jobs.services import JobNotClaimed, job_running


@shared_task(name="annotations.tasks.volume_import")
def volume_import_task(job_id: int) -> None:
    from annotations.services import volume_import_run

    try:
        with job_running(job_id) as ctx:
            volume_import_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="annotations.tasks.label_import")
def label_import_task(job_id: int) -> None:
    from annotations.label_import import label_import_run

    try:
        with job_running(job_id) as ctx:
            label_import_run(ctx)
    except JobNotClaimed:
        return
