"""Celery task of the feature reports: a thin wrapper that runs the report service as a job.

Registered through ``segmentation.tasks`` (which Celery autodiscovers) importing it; its name
keeps that module's prefix. It runs on the default queue: features and meshes are CPU work.
"""
from __future__ import annotations

from celery import shared_task

from emportal.jobs.services import JobNotClaimed, job_running


@shared_task(name="segmentation.tasks.report")
def report_task(job_id: int) -> None:
    from segmentation.reports.services import report_run

    try:
        with job_running(job_id) as ctx:
            report_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="segmentation.tasks.report_unit")
def report_unit_task(job_id: int) -> None:
    """A helper of a report job: measures units of cells nobody has claimed (not a job of its own)."""
    from segmentation.reports.services import report_unit_help

    report_unit_help(job_id)
