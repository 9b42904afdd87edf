"""Segment blocks spread over real Celery worker processes: the same bytes as one process,
a dead worker's block taken over, and a cancel that stops the blocks left."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from emportal.jobs.services import job_cancel
from segmentation.modelloop import blocks, segment, selectors
from segmentation.models import SegmentationRun
from tests.conftest import running_celery_worker
from tests.segmentation.modelloop.test_retrain import _retrain
from tests.segmentation.modelloop.test_segment import _segment
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.services, pytest.mark.slow]

STALE_S = 3
BLOCK = (4, 96, 96)  # three blocks of the (12, 96, 96) phantom


@pytest.fixture
def two_workers(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One Celery worker with two processes on both queues; block claims go stale after 3 s."""
    with running_celery_worker(settings, tmp_path, processes=2, name="blocks", wait_s=90,
                               env={"EMPORTAL_SEGMENT_BLOCK_STALE_SECONDS": str(STALE_S)}) as proc:
        yield proc


def _levels(volume: Any) -> list[np.ndarray]:
    dest = volume_zarr_path(volume)
    return [np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, level)[:])
            for level in range(len(omezarr.label_regions(dest, LayerName.PREDICTION)))]


def _wait(job: Job, seconds: float, states: tuple[str, ...] = tuple(Job.FINISHED), **touch: Path) -> Job:
    deadline = time.time() + seconds
    while time.time() < deadline:
        job.refresh_from_db()
        if job.state in states:
            return job
        for path in touch.values():  # a claim kept alive by the test, as a live worker would
            try:
                path.touch()
            except FileNotFoundError:  # the job ended and removed its block files
                pass
        time.sleep(0.3)
    pytest.fail(f"job {job.pk} still {job.state} after {seconds} s: {job.message}")


def _dead_claim(job_id: int, index: int) -> Path:
    """The claim a worker killed inside block `index` leaves behind."""
    path = blocks.segment_dir(job_id) / f"block-{index}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("dead-host:1")
    return path


def test_blocks_on_two_worker_processes_write_the_bytes_of_one_process_and_a_dead_workers_block_is_taken_over(
        cast: Any, tmp_path: Path, two_workers: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    _retrain(pv.volume, cast.annotator, max_steps=6)
    alone = _segment(pv.volume, cast.annotator, k=4)  # one block, in this process
    assert alone.state == Job.State.SUCCEEDED, alone.message
    expected, first = _levels(pv.volume), SegmentationRun.objects.get(job_id=alone.pk)

    def enqueue(job_id: int) -> None:
        _dead_claim(job_id, 1)  # block 1 was claimed by a worker that died in it
        from segmentation.modelloop.tasks import segment_task

        segment_task.delay(job_id)

    job = segment.volume_segment(pv.volume, cast.annotator, k=4, block=BLOCK, enqueue=enqueue)
    job = _wait(job, 300)
    assert job.state == Job.State.SUCCEEDED, job.message
    run = SegmentationRun.objects.get(job_id=job.pk)
    assert run.outputs["timings"]["blocks"] == 3
    assert all(name.count(":") == 1 and not name.startswith("dead-host") for name in run.outputs["workers"])
    for a, b in zip(expected, _levels(pv.volume)):
        assert np.array_equal(a, b)  # bit for bit, the taken-over block too, at every level
    assert run.outputs["suggestions"] == first.outputs["suggestions"]
    assert pv.volume.layers.get(name=LayerName.PREDICTION).version == job.result["version"]
    assert not blocks.segment_dir(job.pk).exists()  # the block files go once the run is recorded


def test_a_cancel_stops_the_blocks_left_and_the_layer_says_it_is_partial(
        cast: Any, tmp_path: Path, two_workers: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    _retrain(pv.volume, cast.annotator)
    claims: dict[str, Path] = {}

    def enqueue(job_id: int) -> None:
        claims["busy"] = _dead_claim(job_id, 2)  # block 2 is busy elsewhere (the test keeps its claim alive)
        from segmentation.modelloop.tasks import segment_task

        segment_task.delay(job_id)

    job = segment.volume_segment(pv.volume, cast.annotator, block=BLOCK, enqueue=enqueue)
    deadline = time.time() + 300
    while len(blocks.blocks_done(job.pk, 3)) < 2:  # blocks 0 and 1 land, block 2 is waited for
        assert time.time() < deadline, "blocks 0 and 1 did not land"
        claims["busy"].touch()
        time.sleep(0.3)
    job.refresh_from_db()
    job_cancel(job)
    job = _wait(job, 120, **claims)
    assert job.state == Job.State.CANCELLED
    assert job.result["blocks"] == [2, 3]  # block 2 never ran
    assert not blocks.segment_dir(job.pk).exists()  # nor are block files left behind
    state = selectors.layer_write_state(pv.volume.pk, LayerName.PREDICTION)
    assert state["state"] == "partial" and state["job"] == job.pk
    assert not SegmentationRun.objects.filter(job_id=job.pk).exists()
