"""REST of the model loop: every endpoint checks roles (outsider 404, viewer 403 on actions)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.job_kinds import IMPORT
from annotations.layer_names import LayerName
from annotations.layers import layer_create
from annotations.strokes import layer_write_slices
from emportal.jobs.models import Job
from segmentation.models import ModelVersion, SegmentationRun
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = pytest.mark.django_db


@pytest.fixture
def loop(cast: Any, tmp_path: Path, settings: Any) -> dict[str, Any]:
    """A volume with painted labels and cells, two model versions (the second active), a
    prediction and a run with two suggestions."""
    pv = phantom_volume(cast.project, tmp_path, cells=True)
    (Path(settings.MEDIA_ROOT) / "models").mkdir(exist_ok=True)
    versions: list[ModelVersion] = []
    for i, dice in enumerate((0.5, 0.7)):
        weights = Path(settings.MEDIA_ROOT) / "models" / f"w{i}.pt"
        weights.write_bytes(b"not really weights")
        versions.append(ModelVersion.objects.create(
            project=cast.project, volume=pv.volume, weights=f"models/w{i}.pt", active=i == 1,
            classes={"background": 1, "nucleus": 2}, val_dice={"nucleus": dice}, labels_hash="ab" * 32,
            parent=versions[-1] if versions else None, curve=[{"step": 1, "loss": 0.5, "val_dice": dice}]))
    layer_create(pv.volume, LayerName.PREDICTION, editable=False)
    layer_write_slices(pv.volume, LayerName.PREDICTION, {4: np.full((96, 96), 2, np.uint16)})
    run = SegmentationRun.objects.create(volume=pv.volume, model_version=versions[1], outputs={"suggestions": [
        {"z": 1, "y0": 0, "x0": 0, "y1": 48, "x1": 48, "score": 0.9, "dismissed": False},
        {"z": 5, "y0": 48, "x0": 0, "y1": 96, "x1": 48, "score": 0.4, "dismissed": False}]})
    return {"volume": pv.volume, "versions": versions, "run": run}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _reads(loop: dict[str, Any], project_id: int) -> list[str]:
    v, (a, b), _ = loop["volume"], loop["versions"], loop["run"]
    return [f"/api/projects/{project_id}/models/", f"/api/models/{a.pk}/", f"/api/models/{a.pk}/compare/{b.pk}/",
            f"/api/volumes/{v.pk}/suggestions/", f"/api/volumes/{v.pk}/cells/",
            f"/api/volumes/{v.pk}/thumbnail.png?z=1&y0=0&x0=0&y1=48&x1=48"]


def _actions(loop: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    v, (a, _b), run = loop["volume"], loop["versions"], loop["run"]
    return [(f"/api/models/{a.pk}/activate/", {}),
            (f"/api/volumes/{v.pk}/retrain/", {"minutes": 1}),
            (f"/api/volumes/{v.pk}/segment/", {}),
            (f"/api/volumes/{v.pk}/cells/", {"method": "flow"}),
            (f"/api/runs/{run.pk}/suggestions/0/dismiss/", {}),
            (f"/api/volumes/{v.pk}/accept-prediction/",
             {"uuid": str(uuid.uuid4()), "axis": "z", "index": 4, "points": [[10, 10]], "radius": 3})]


def test_outsiders_get_404_from_every_endpoint(cast: Any, loop: dict[str, Any]) -> None:
    client = _client(cast.outsider)
    for url in _reads(loop, cast.project.pk):
        assert client.get(url).status_code == 404, url
    for url, body in _actions(loop):
        assert client.post(url, body, content_type="application/json").status_code == 404, url


def test_viewers_read_everything_but_get_403_for_every_action(cast: Any, loop: dict[str, Any]) -> None:
    client = _client(cast.viewer)
    for url in _reads(loop, cast.project.pk):
        assert client.get(url).status_code == 200, url
    for url, body in _actions(loop):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 403, (url, response.content)
    assert not Job.objects.exclude(kind=IMPORT).exists()
    assert ModelVersion.objects.get(active=True) == loop["versions"][1]


def test_annotators_start_jobs_and_get_them_back_queued(cast: Any, loop: dict[str, Any]) -> None:
    client = _client(cast.annotator)
    v = loop["volume"]
    for kind, (url, body) in zip(("retrain", "segment", "cells"), _actions(loop)[1:4]):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["id"])
        assert (job.kind, job.state, job.volume_id, job.created_by) == (kind, "queued", v.pk, cast.annotator)
    assert Job.objects.get(kind="retrain").params["parent"] == loop["versions"][1].pk
    assert Job.objects.get(kind="segment").params["model_version"] == loop["versions"][1].pk
    again = client.post(f"/api/volumes/{v.pk}/retrain/", {"minutes": 1}, content_type="application/json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_running"


def test_it_lists_versions_newest_first_and_compares_two(cast: Any, loop: dict[str, Any]) -> None:
    client = _client(cast.viewer)
    a, b = loop["versions"]
    listed = client.get(f"/api/projects/{cast.project.pk}/models/?volume={loop['volume'].pk}").json()
    assert [m["id"] for m in listed] == [b.pk, a.pk] and [m["active"] for m in listed] == [True, False]
    assert listed[0]["parent"] == a.pk and listed[0]["mean_val_dice"] == pytest.approx(0.7)
    compared = client.get(f"/api/models/{a.pk}/compare/{b.pk}/").json()
    assert compared["delta"]["nucleus"] == pytest.approx(0.2) and compared["same_labels"]


def test_making_an_earlier_version_active_deactivates_the_other(cast: Any, loop: dict[str, Any]) -> None:
    a, b = loop["versions"]
    response = _client(cast.annotator).post(f"/api/models/{a.pk}/activate/")
    assert response.status_code == 200 and response.json()["active"]
    a.refresh_from_db(), b.refresh_from_db()
    assert a.active and not b.active


def test_dismissing_a_suggestion_hides_it_for_everyone(cast: Any, loop: dict[str, Any]) -> None:
    run = loop["run"]
    response = _client(cast.annotator).post(f"/api/runs/{run.pk}/suggestions/1/dismiss/")
    assert response.status_code == 200
    listed = _client(cast.viewer).get(f"/api/volumes/{loop['volume'].pk}/suggestions/").json()
    assert [s["dismissed"] for s in listed["outputs"]["suggestions"]] == [False, True]
    missing = _client(cast.annotator).post(f"/api/runs/{run.pk}/suggestions/9/dismiss/")
    assert missing.status_code == 404


def test_accepting_the_prediction_over_rest_is_an_undoable_stroke(cast: Any, loop: dict[str, Any]) -> None:
    v = loop["volume"]
    client = _client(cast.annotator)
    uid = str(uuid.uuid4())
    body = {"uuid": uid, "axis": "z", "index": 4, "points": [[50, 50]], "radius": 3}
    response = client.post(f"/api/volumes/{v.pk}/accept-prediction/", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["uuid"] == uid
    assert client.get(f"/api/volumes/{v.pk}/layers/manual/value/?z=4&y=50&x=50").json()["value"] == 2
    assert client.post(f"/api/volumes/{v.pk}/accept-prediction/", body,
                       content_type="application/json").status_code == 200  # same uuid: no-op
    assert client.post(f"/api/volumes/{v.pk}/strokes/{uid}/undo/").status_code == 200
    assert client.get(f"/api/volumes/{v.pk}/layers/manual/value/?z=4&y=50&x=50").json()["value"] == 0


def test_bad_inputs_get_one_error_shape(cast: Any, loop: dict[str, Any]) -> None:
    client = _client(cast.annotator)
    v = loop["volume"]
    for url, body, status, code in ((f"/api/volumes/{v.pk}/retrain/", {"minutes": -1}, 400, "invalid"),
                                    (f"/api/volumes/{v.pk}/segment/", {"model": 999999}, 404, "not_found"),
                                    (f"/api/volumes/{v.pk}/cells/", {"method": "magic"}, 400, "invalid")):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == status and response.json()["error"]["code"] == code, (url, response.content)
        assert response.json()["error"]["message"], url
    thumb = client.get(f"/api/volumes/{v.pk}/thumbnail.png?z=1")
    assert thumb.status_code == 400
    ok = client.get(f"/api/volumes/{v.pk}/thumbnail.png?z=1&y0=0&x0=0&y1=48&x1=48&overlay=prediction&size=32")
    assert ok.status_code == 200 and ok["Content-Type"] == "image/png" and ok.content[:4] == b"\x89PNG"


def test_before_any_run_the_latest_run_is_json_null(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=())
    client = _client(cast.viewer)
    for url in (f"/api/volumes/{pv.volume.pk}/suggestions/", f"/api/volumes/{pv.volume.pk}/cells/"):
        response = client.get(url)
        assert response.status_code == 200 and response.content == b"null", url
