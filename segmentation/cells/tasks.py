"""Celery task of the cells job, on the `gpu` queue (routed by the kinds in segmentation/job_kinds.py).

Its name keeps the ``segmentation.tasks.`` prefix it was first queued under.
"""
from __future__ import annotations

from celery import shared_task

from emportal.jobs.services import JobNotClaimed, job_running


@shared_task(name="segmentation.tasks.cells")
def cells_task(job_id: int) -> None:
    from segmentation.cells.services import volume_cells_run

    try:
        with job_running(job_id) as ctx:
            volume_cells_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="segmentation.tasks.cells_interval")
def cells_interval_task(job_id: int) -> None:
    """A helper of a cells job: runs key-slice intervals nobody has claimed (not a job of its own)."""
    from segmentation.cells.intervals import cells_interval_help

    cells_interval_help(job_id)
