"""A cells job's fusion run as key-slice intervals, by its task and by helper tasks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from emportal.jobs.services import job_running
from segmentation.cells import intervals
from segmentation.cells import services as cells
from segmentation.core.cells import segment_cells
from tests.segmentation.cells.test_services import _fake_cell_prediction
from tests.segmentation.phantom_volumes import KEYS, phantom_volume

pytestmark = pytest.mark.django_db


def _whole_volume_fusion(pv: Any) -> np.ndarray:
    dest = volume_zarr_path(pv.volume)
    image = np.asarray(omezarr.open_level(dest, 0)[:])
    keys = np.asarray(omezarr.open_label_level(dest, LayerName.CELLS, 0)[:])
    return segment_cells(image, pv.phantom.cells > 0, keys, key_indices=list(KEYS)).cells


def _run(pv: Any, user: Any, **kwargs: Any) -> tuple[Job, np.ndarray]:
    job = cells.volume_cells(pv.volume, user, method="fusion", enqueue=lambda job_id: None, **kwargs)
    with job_running(job.pk) as ctx:
        cells.volume_cells_run(ctx)
    job.refresh_from_db()
    out = np.asarray(omezarr.open_label_level(volume_zarr_path(pv.volume), LayerName.CELLS_AUTO, 0)[:])
    return job, out


def test_the_jobs_task_runs_every_interval_and_equals_the_whole_volume_fusion(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    _fake_cell_prediction(pv)
    job, out = _run(pv, cast.annotator, helpers=0)
    assert job.state == Job.State.SUCCEEDED, job.message
    np.testing.assert_array_equal(out, _whole_volume_fusion(pv))
    assert not intervals.cells_dir(job.pk).exists()


def test_a_helper_that_starts_first_runs_the_intervals_and_the_result_is_unchanged(
        cast: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from segmentation.cells import tasks

    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    _fake_cell_prediction(pv)
    ran: list[int] = []
    # The helper runs at once, inside the job (as a free worker would before the task gets going).
    monkeypatch.setattr(tasks.cells_interval_task, "delay",
                        lambda job_id: ran.append(intervals.cells_interval_help(job_id)))
    job, out = _run(pv, cast.annotator, helpers=1)
    assert job.state == Job.State.SUCCEEDED, job.message
    assert ran == [len(KEYS)]  # every interval: (0, 6), (6, 11), (11, end)
    np.testing.assert_array_equal(out, _whole_volume_fusion(pv))


def test_a_helper_of_a_job_that_is_not_running_does_nothing(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    job = cells.volume_cells(pv.volume, cast.annotator, enqueue=lambda job_id: None)
    assert intervals.cells_interval_help(job.pk) == 0
