"""Every answer of the report API has exactly the fields and types its OpenAPI schema declares,
for a report computed for real (the fuzzer's world holds only an empty report row), one whose
cells were measured at a raised level, and a report job running with progress."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from emportal.jobs.models import Job
from emportal.jobs.services import job_payload
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports.services import report_compute
from tests.openapi import assert_answer_matches_schema, assert_matches_component

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(phantom_volume: Any) -> FeatureReport:
    return report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")


def _viewer(cast: Any) -> Client:
    client = Client()
    client.force_login(cast.viewer)
    return client


def test_a_computed_report_its_cells_and_the_lists_match_their_schemas(report: FeatureReport, cast: Any) -> None:
    client = _viewer(cast)
    detail = client.get(f"/api/reports/{report.pk}/")
    assert detail.json()["n_cells"] > 0 and set(detail.json()["downloads"]) == {"csv", "xlsx", "parquet", "meshes"}
    assert_answer_matches_schema(detail, "get", "/api/reports/{report_id}/")
    cells = client.get(f"/api/reports/{report.pk}/cells/")
    assert len(cells.json()["rows"]) == report.n_cells
    assert_answer_matches_schema(cells, "get", "/api/reports/{report_id}/cells/")
    listed = client.get(f"/api/projects/{report.volume.project_id}/reports/")
    assert [r["id"] for r in listed.json()] == [report.pk]
    assert_answer_matches_schema(listed, "get", "/api/projects/{project_id}/reports/")


def test_raised_levels_and_a_running_report_job_match_their_schemas(report: FeatureReport, cast: Any) -> None:
    FeatureReport.objects.filter(pk=report.pk).update(
        summary={**report.summary, "raised_levels": {"3": {"0": 1}}, "means": {"cell_volume_um3": None}})
    job = Job.objects.create(project=cast.project, volume=report.volume, kind=REPORT, state=Job.State.RUNNING,
                             progress=0.4242, message="meshed 3 of 7 cells", params={"labels_layer": "truth"})
    assert_matches_component(job_payload(job), "JobOutput")
    listing = _viewer(cast).get(f"/api/volumes/{report.volume_id}/reports/")
    body = listing.json()
    assert body["active_jobs"][0]["progress"] == 0.4242 and body["reports"][0]["raised_levels"] == {"3": {"0": 1}}
    assert_answer_matches_schema(listing, "get", "/api/volumes/{volume_id}/reports/")


def test_a_bad_mesh_query_parameter_is_a_400_naming_it(report: FeatureReport, cast: Any) -> None:
    cell = report.summary["mesh_cells"][0]
    for params, name in (({"resolution": "huge"}, "resolution"), ({"download": "please"}, "download")):
        response = _viewer(cast).get(f"/api/reports/{report.pk}/cells/{cell}/mesh.glb", params)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["detail"] == {"parameter": name}
