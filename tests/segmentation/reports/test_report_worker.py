"""The report job on a real Celery worker process, queued through the API."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings
from django.test import Client

from emportal.jobs.models import Job
from segmentation.models import FeatureReport

pytestmark = [pytest.mark.services]


def test_a_report_queued_through_the_api_runs_on_the_worker_and_reports_progress(
        phantom_volume: Any, cast: Any, celery_worker: Any) -> None:
    client = Client()
    client.force_login(cast.annotator)
    response = client.post(f"/api/volumes/{phantom_volume.pk}/reports/",
                           {"labels_layer": "truth", "cells_layer": "cells_truth"}, content_type="application/json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    seen: list[float] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state == Job.State.RUNNING:
            seen.append(job.progress)
        if job.state in Job.FINISHED:
            break
        time.sleep(0.1)
    assert job.state == Job.State.SUCCEEDED, (job.state, job.message, job.log[-2000:])
    assert job.worker and job.progress == 1.0
    assert seen == sorted(seen)
    report = FeatureReport.objects.get(pk=job.result["report"])
    assert report.job_id == job.pk and report.n_cells == phantom_volume.phantom.cells.max()
    table = pd.read_csv(Path(settings.MEDIA_ROOT) / report.files["csv"])
    assert sorted(table["cell_id"]) == list(range(1, report.n_cells + 1))
