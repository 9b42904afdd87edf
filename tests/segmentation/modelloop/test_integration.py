"""Retrain, cancel and segment through REST and a real Celery worker on the gpu queue."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from segmentation.models import ModelVersion, SegmentationRun
from tests.segmentation.phantom_volumes import LABELED, TINY, phantom_volume

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _wait(job_id: int, states: tuple[str, ...], timeout: float = 240) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} is {Job.objects.get(pk=job_id).state}, never reached {states}")


def test_retrain_then_segment_on_the_worker_beats_chance_and_cancel_keeps_the_version(
        cast: Any, celery_worker: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    client = Client()
    client.force_login(cast.annotator)
    v = pv.volume

    response = client.post(f"/api/volumes/{v.pk}/retrain/", {"minutes": 2, "max_steps": 100, "config": TINY},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    job = _wait(response.json()["id"], Job.FINISHED)
    assert job.state == Job.State.SUCCEEDED, (job.message, job.log[-2000:])
    model = ModelVersion.objects.get()
    assert model.active and model.job_id == job.pk
    # The step cap holds; a loaded machine may run out of time, and a stalled validation stops it early.
    assert model.config["steps"] <= 100 and model.config["stopped"] in {"max_steps", "budget", "early_stop"}
    assert job.result["curve"] and job.result["model_version"] == model.pk

    # A retrain cancelled while it trains leaves the first version active and adds none.
    response = client.post(f"/api/volumes/{v.pk}/retrain/", {"minutes": 2, "config": TINY},
                           content_type="application/json")
    second = _wait(response.json()["id"], (Job.State.RUNNING,))
    time.sleep(1.5)
    assert client.post(f"/api/jobs/{second.pk}/cancel/").status_code == 200
    second = _wait(second.pk, Job.FINISHED, timeout=60)
    assert second.state == Job.State.CANCELLED
    assert list(ModelVersion.objects.values_list("pk", "active")) == [(model.pk, True)]

    response = client.post(f"/api/volumes/{v.pk}/segment/", {"k": 4}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = _wait(response.json()["id"], Job.FINISHED)
    assert job.state == Job.State.SUCCEEDED, (job.message, job.log[-2000:])
    run = SegmentationRun.objects.get(job=job)
    assert run.model_version_id == model.pk and len(run.outputs["suggestions"]) == 4
    pred = np.asarray(omezarr.open_label_level(volume_zarr_path(v), LayerName.PREDICTION, 0)[:])
    unseen = [z for z in range(pred.shape[0]) if z not in LABELED]
    background = cast.project.label_classes.get(name="background").value
    truth_fg, pred_fg = pv.truth[unseen] != background, pred[unseen] != background
    dice = 2 * (truth_fg & pred_fg).sum() / (truth_fg.sum() + pred_fg.sum())
    # Chance: a random guess with the same foreground share scores Dice = that share (~0.04 here).
    assert dice > 0.25 > 4 * truth_fg.mean(), dice
    listed = client.get(f"/api/volumes/{v.pk}/suggestions/").json()
    assert listed["id"] == run.pk
