"""Celery tasks of the model loop, on the `gpu` queue (routed by the kinds in segmentation/job_kinds.py).

Each takes a job id, claims the job and runs one service; everything else (progress,
cancel, failure) is emportal.jobs.services.job_running's business. The task names keep
the ``segmentation.tasks.`` prefix they were first queued under, so queued messages and
the registered kinds still find them.
"""
from __future__ import annotations

from celery import shared_task

from emportal.jobs.services import JobNotClaimed, job_running


@shared_task(name="segmentation.tasks.retrain")
def retrain_task(job_id: int) -> None:
    from segmentation.modelloop.retrain import model_retrain_run

    try:
        with job_running(job_id) as ctx:
            model_retrain_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="segmentation.tasks.pretrain")
def pretrain_task(job_id: int) -> None:
    from segmentation.modelloop.pretrain import encoder_pretrain_run

    try:
        with job_running(job_id) as ctx:
            encoder_pretrain_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="segmentation.tasks.segment")
def segment_task(job_id: int) -> None:
    from segmentation.modelloop.segment import volume_segment_run

    try:
        with job_running(job_id) as ctx:
            volume_segment_run(ctx)
    except JobNotClaimed:
        return


@shared_task(name="segmentation.tasks.segment_block")
def segment_block_task(job_id: int) -> None:
    """A helper of a segment job: runs blocks nobody has claimed (not a job of its own)."""
    from segmentation.modelloop.segment import segment_block_help

    segment_block_help(job_id)
