"""Celery tasks of the segmentation app."""
from __future__ import annotations

from celery import shared_task

from segmentation.jobs import jobs_reap_stale
from segmentation.tasks_models import cells_task, retrain_task, segment_task  # noqa: F401 - registers retrain/segment/cells
from segmentation.tasks_reports import report_task  # noqa: F401 - registers segmentation.tasks.report


@shared_task(name="segmentation.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return jobs_reap_stale()
