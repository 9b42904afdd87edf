"""Every answer of the model-loop API has exactly the fields and types its OpenAPI schema
declares: versions with a parent, a curve and classes only one of them measured, their comparison,
a run with suggestions (and null before any), and a bad query parameter is a 400 naming it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from segmentation.models import ModelVersion, SegmentationRun
from tests.openapi import assert_answer_matches_schema
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = pytest.mark.django_db


@pytest.fixture
def volume(cast: Any, tmp_path: Path) -> Any:
    return phantom_volume(cast.project, tmp_path, labeled=()).volume


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_versions_their_comparison_and_activation_match_their_schemas(cast: Any, volume: Any, settings: Any) -> None:
    (Path(settings.MEDIA_ROOT) / "models").mkdir(exist_ok=True)
    (Path(settings.MEDIA_ROOT) / "models" / "b.pt").write_bytes(b"not really weights")
    old = ModelVersion.objects.create(project=cast.project, volume=volume, weights="models/a.pt",
                                      classes={"background": 1, "nucleus": 2}, val_dice={"nucleus": 0.5},
                                      hierarchy={"nucleus": None}, config={"epochs": 3})
    new = ModelVersion.objects.create(project=cast.project, volume=volume, weights="models/b.pt", parent=old,
                                      classes={"background": 1, "nucleus": 2}, labels_hash="ab" * 32,
                                      val_dice={"background": 0.9},
                                      curve=[{"step": 1, "loss": 0.5, "val_dice": 0.4}])
    client = _client(cast.annotator)
    listed = client.get(f"/api/projects/{cast.project.pk}/models/", {"volume": volume.pk})
    assert [m["id"] for m in listed.json()] == [new.pk, old.pk]
    assert_answer_matches_schema(listed, "get", "/api/projects/{project_id}/models/")
    compared = client.get(f"/api/models/{old.pk}/compare/{new.pk}/")
    assert compared.json()["delta"] == {"background": None, "nucleus": None}
    assert_answer_matches_schema(compared, "get", "/api/models/{model_id}/compare/{other_id}/")
    activated = client.post(f"/api/models/{new.pk}/activate/")
    assert activated.json()["active"] is True
    assert_answer_matches_schema(activated, "post", "/api/models/{model_id}/activate/")
    no_weights = client.post(f"/api/models/{old.pk}/activate/")
    assert no_weights.status_code == 409
    assert_answer_matches_schema(no_weights, "post", "/api/models/{model_id}/activate/")


def test_the_latest_run_is_null_then_a_run_with_suggestions_as_declared(cast: Any, volume: Any) -> None:
    client = _client(cast.annotator)
    for path in ("/api/volumes/{volume_id}/suggestions/", "/api/volumes/{volume_id}/cells/"):
        none = client.get(path.format(volume_id=volume.pk))
        assert none.content == b"null"
        assert_answer_matches_schema(none, "get", path)
    run = SegmentationRun.objects.create(volume=volume, outputs={"kind": "prediction", "suggestions": [
        {"z": 1, "y0": 0, "x0": 0, "y1": 48, "x1": 48, "score": 0.9, "dismissed": False}]})
    dismissed = client.post(f"/api/runs/{run.pk}/suggestions/0/dismiss/")
    assert dismissed.json()["outputs"]["suggestions"][0]["dismissed"] is True
    assert_answer_matches_schema(dismissed, "post", "/api/runs/{run_id}/suggestions/{index}/dismiss/")
    latest = client.get(f"/api/volumes/{volume.pk}/suggestions/")
    assert latest.json()["id"] == run.pk and latest.json()["layer_state"]["state"] == "complete"
    assert_answer_matches_schema(latest, "get", "/api/volumes/{volume_id}/suggestions/")


@pytest.mark.parametrize("path, params, parameter", [
    ("/api/projects/{project}/models/", {"volume": "v1"}, "volume"),
    ("/api/projects/{project}/models/", {"volume": str(2**63)}, "volume"),
    ("/api/volumes/{volume}/thumbnail.png", {"z": "1", "y0": "0", "x0": "0", "y1": "48"}, "x1"),
    ("/api/volumes/{volume}/thumbnail.png", {"z": "1", "y0": "0", "x0": "0", "y1": "48", "x1": "4.8"}, "x1"),
    ("/api/volumes/{volume}/thumbnail.png", {"z": "1", "y0": "0", "x0": "0", "y1": "48", "x1": "48", "size": "4"},
     "size"),
])
def test_a_bad_query_parameter_is_a_400_naming_it(cast: Any, volume: Any, path: str, params: dict[str, str],
                                                  parameter: str) -> None:
    response = _client(cast.viewer).get(path.format(project=cast.project.pk, volume=volume.pk), params)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == {"code": "invalid", "message": response.json()["error"]["message"],
                                        "detail": {"parameter": parameter}}
