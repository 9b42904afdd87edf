"""Celery tasks of the jobs app: the reaper, run by beat (emportal/celery.py beat_schedule)."""
from __future__ import annotations

from celery import shared_task

from emportal.jobs.services import jobs_reap_stale


@shared_task(name="emportal.jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    """Fail the jobs whose worker died or whose queue message was lost; returns how many."""
    return jobs_reap_stale()
