"""The cells job's default run holds slabs, never the volume; the runs that hold it whole are refused when it is too large."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import job_running
from segmentation.cells import intervals
from segmentation.cells import services as cells
from segmentation.core.cell_counts import cell_table
from segmentation.core.metrics import instance_dice
from segmentation.models import SegmentationRun
from tests.segmentation.cells.test_services import _fake_cell_prediction
from tests.segmentation.phantom_volumes import SHAPE, phantom_volume

pytestmark = pytest.mark.django_db
NO_QUEUE = {"enqueue": lambda job_id: None}
VOXELS = SHAPE[0] * SHAPE[1] * SHAPE[2]


class Recorded:
    """A real zarr array whose every read is recorded (voxels read), to show how much a run holds at once."""

    def __init__(self, arr: Any, reads: list[int]) -> None:
        self._arr, self._reads = arr, reads

    def __getitem__(self, key: Any) -> np.ndarray:
        out = np.asarray(self._arr[key])
        self._reads.append(int(out.size))
        return out

    def __setitem__(self, key: Any, value: Any) -> None:
        self._arr[key] = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._arr, name)


def _record_reads(monkeypatch: Any) -> list[int]:
    """Record the reads of every level-0 array the job reads: image, keys, prediction, truth, scratch ids."""
    reads: list[int] = []
    open_level, open_label_level, run = omezarr.open_level, omezarr.open_label_level, intervals.cells_intervals_run

    def level(dest: Any, lvl: int, *, mode: str = "r") -> Any:
        arr = open_level(dest, lvl, mode=mode)
        return Recorded(arr, reads) if mode == "r" else arr

    def label_level(dest: Any, name: str, lvl: int, *, mode: str = "r") -> Any:
        arr = open_label_level(dest, name, lvl, mode=mode)
        return Recorded(arr, reads) if mode == "r" else arr

    def scratch(*args: Any, **kwargs: Any) -> Any:
        ids, first_new_id = run(*args, **kwargs)
        return Recorded(ids, reads), first_new_id

    monkeypatch.setattr(omezarr, "open_level", level)
    monkeypatch.setattr(omezarr, "open_label_level", label_level)
    monkeypatch.setattr(intervals, "cells_intervals_run", scratch)
    return reads


def _run(volume: Any, user: Any, **kwargs: Any) -> Job:
    job = cells.volume_cells(volume, user, **kwargs, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        cells.volume_cells_run(ctx)
    job.refresh_from_db()
    return job


def test_the_default_run_reads_no_more_than_a_slab_at_once_and_its_table_and_dice_are_the_whole_arrays(
        cast: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True, truth_cells=True)
    _fake_cell_prediction(pv)
    monkeypatch.setattr(cells, "SLAB", 4)  # three slabs of the 12 slices
    reads = _record_reads(monkeypatch)
    job = _run(pv.volume, cast.annotator, helpers=0)
    assert job.state == Job.State.SUCCEEDED, job.message
    slab = 4 * SHAPE[1] * SHAPE[2]
    assert len(reads) > 3 * SHAPE[0] and max(reads) == slab  # many reads, none above a slab

    monkeypatch.undo()
    dest = volume_zarr_path(pv.volume)
    out = np.asarray(omezarr.open_label_level(dest, LayerName.CELLS_AUTO, 0)[:])
    truth = np.asarray(omezarr.open_label_level(dest, LayerName.CELLS_TRUTH, 0)[:])
    run = SegmentationRun.objects.get(layer=LayerName.CELLS_AUTO)
    assert run.outputs["cells"] == cell_table(out, pv.volume.voxel_size_nm)
    assert pv.volume.layers.get(name=LayerName.CELLS_AUTO).max_value == out.max() > 0
    whole = instance_dice(out, truth)
    assert run.outputs["dice"]["fusion"]["mean"] == round(whole["mean"], 6) > 0.9
    assert run.outputs["dice"]["fusion"]["matched"] == {str(k): v for k, v in whole["matched"].items()}


def test_a_run_that_holds_the_volume_whole_reads_it_whole(cast: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    reads = _record_reads(monkeypatch)
    job = _run(pv.volume, cast.annotator, method="flow")
    assert job.state == Job.State.SUCCEEDED, job.message
    assert max(reads) == VOXELS  # what the slab bound above would catch


def test_the_whole_volume_methods_are_refused_above_the_limit_and_fusion_is_not(
        cast: Any, tmp_path: Path, settings: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True, truth_cells=True)
    settings.CELLS_WHOLE_MAX_VOXELS = VOXELS - 1
    with pytest.raises(ApplicationError) as err:  # fusion without a cell-interior prediction falls back to flow
        cells.volume_cells(pv.volume, cast.annotator, **NO_QUEUE)
    assert (err.value.code, err.value.status_code) == ("volume_too_large", 413)
    assert "EMPORTAL_CELLS_WHOLE_MAX_VOXELS" in err.value.message and "fallback" in err.value.message

    _fake_cell_prediction(pv)
    for refused in ({"method": "flow"}, {"method": "interior"}, {"method": "fusion", "compare": True}):
        with pytest.raises(ApplicationError) as err:
            cells.volume_cells(pv.volume, cast.annotator, **refused, **NO_QUEUE)
        assert err.value.code == "volume_too_large", refused
        assert f"{VOXELS} voxels" in err.value.message and "fusion without compare" in err.value.message
    job = _run(pv.volume, cast.annotator, method="fusion", helpers=0)
    assert job.state == Job.State.SUCCEEDED, job.message
    assert "fusion" in SegmentationRun.objects.get(job=job).outputs["dice"]


def test_a_queued_run_that_would_hold_the_volume_whole_fails_if_the_limit_is_lowered_before_it_starts(
        cast: Any, tmp_path: Path, settings: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    job = cells.volume_cells(pv.volume, cast.annotator, method="flow", **NO_QUEUE)
    settings.CELLS_WHOLE_MAX_VOXELS = VOXELS - 1
    with job_running(job.pk) as ctx:
        cells.volume_cells_run(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "volume_too_large"
    assert not pv.volume.layers.filter(name=LayerName.CELLS_AUTO).exists()
