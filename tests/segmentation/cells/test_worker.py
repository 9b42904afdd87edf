"""Segment cells through the real Celery worker: key slices in, a 3D instance layer out."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.imaging import omezarr
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from segmentation.models import SegmentationRun
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.services]


def test_cells_run_on_the_worker_and_match_the_truth(cast: Any, celery_worker: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True, truth_cells=True)
    client = Client()
    client.force_login(cast.annotator)
    response = client.post(f"/api/volumes/{pv.volume.pk}/cells/", {"method": "flow", "compare": True},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    deadline = time.monotonic() + 240
    while (job := Job.objects.get(pk=response.json()["id"])).state not in Job.FINISHED:
        assert time.monotonic() < deadline, "the cells job did not finish"
        time.sleep(0.3)
    assert job.state == Job.State.SUCCEEDED, (job.message, job.log[-2000:])
    run = SegmentationRun.objects.get(job=job)
    cells = np.asarray(omezarr.open_label_level(volume_zarr_path(pv.volume), "cells_auto", 0)[:])
    assert set(np.unique(cells)) - {0} == set(np.unique(pv.phantom.cells)) - {0}
    assert run.outputs["dice"]["flow"]["mean"] > 0.8
    assert run.outputs["interior_from"] is None  # no prediction yet: flow alone, and the job says so
    assert client.get(f"/api/volumes/{pv.volume.pk}/cells/").json()["id"] == run.pk
