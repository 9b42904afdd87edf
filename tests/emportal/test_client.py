"""emportal.client against a live server (Daphne) and a real Celery worker, with a token."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tifffile

from annotations.models import Volume
from emportal.client import EMPortal, EMPortalError, Job
from emportal.jobs.models import Job as JobRow
from emportal.tokens.services import token_create
from segmentation.models import FeatureReport
from tests.factories import gradient_volume
from tests.segmentation.phantom_volumes import TINY, phantom_volume

pytestmark = [pytest.mark.services]


def test_a_script_logs_in_with_a_token_lists_uploads_and_waits_for_the_import(
        live_app: str, celery_worker: Any, cast: Any, tmp_path: Path) -> None:
    with pytest.raises(EMPortalError) as refused:
        EMPortal(live_app, token="emp_not-a-token").projects()
    assert refused.value.status == 401
    _, key = token_create(cast.annotator, "client test")
    portal = EMPortal(live_app, token=key)
    assert [p["name"] for p in portal.projects()] == [cast.project.name]
    assert portal.volumes(cast.project.pk) == []

    path = tmp_path / "bx2.tif"
    tifffile.imwrite(path, gradient_volume((6, 200, 240)), photometric="minisblack")
    queued = portal.upload(cast.project.pk, path, name="Bx2", voxel_size_nm=(30, 5, 5))
    assert queued.kind == "import" and queued.state in ("queued", "running")
    seen: list[Job] = []
    job = portal.wait(queued, timeout=180, poll=0.2, progress=seen.append)
    assert job.state == "succeeded" and seen[-1] == job
    progress = [j.progress for j in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0

    [volume] = portal.volumes(cast.project.pk)
    assert volume["name"] == "Bx2" and volume["shape"] == [6, 200, 240] and volume["voxel_size_nm"] == [30, 5, 5]
    assert Volume.objects.get(pk=volume["id"]).state == Volume.State.READY and job.volume == volume["id"]

    # A viewer's token gets the viewer's refusal, as the session would.
    _, viewer_key = token_create(cast.viewer, "viewer script")
    with pytest.raises(EMPortalError) as forbidden:
        EMPortal(live_app, token=viewer_key).upload(cast.project.pk, path)
    assert forbidden.value.status == 403


@pytest.mark.slow
def test_a_script_retrains_segments_finds_cells_and_reads_a_report_as_a_dataframe(
        live_app: str, celery_worker: Any, cast: Any, tmp_path: Path) -> None:
    volume = phantom_volume(cast.project, tmp_path, cells=True, truth_cells=True).volume
    _, key = token_create(cast.annotator, "client test")
    portal = EMPortal(live_app, token=key)

    trained = portal.wait(portal.retrain(volume.pk, minutes=2, max_steps=20, config=TINY), timeout=300,
                          progress=False)
    assert trained.kind == "retrain" and trained.result["model_version"]
    segmented = portal.wait(portal.segment(volume.pk), timeout=300, progress=False)
    assert segmented.kind == "segment" and JobRow.objects.get(pk=segmented.id).state == "succeeded"
    celled = portal.wait(portal.cells(volume.pk), timeout=300, progress=False)
    assert celled.kind == "cells" and volume.layers.filter(name="cells_auto").exists()

    reported = portal.wait(portal.report(volume.pk, labels_layer="manual", cells_layer="cells_truth", meshes=False),
                           timeout=300, progress=False)
    report = FeatureReport.objects.get(pk=reported.result["report"])
    table = portal.report_table(report.pk)
    assert len(table) == report.n_cells > 0
    assert [r["id"] for r in portal.reports(volume.pk)] == [report.pk]
