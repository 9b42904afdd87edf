"""The volume API answers with the fields and types its OpenAPI schema declares, and a bad query
parameter is a 400 naming the parameter, never a 404 or a 500."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from annotations.models import CompleteSlice, Role
from annotations.strokes import stroke_apply
from tests.factories import make_volume
from tests.openapi import assert_answer_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_volume_with_classes_and_a_complete_slice_matches_its_schema(cast: Any, volume: Any) -> None:
    CompleteSlice.objects.create(layer=volume.layers.get(name="manual"), axis="z", index=2)
    response = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/")
    body = response.json()
    assert body["complete_slices"] == [["z", 2]] and body["classes"] and body["levels"][0]["level"] == 0
    assert_answer_matches_schema(response, "get", "/api/volumes/{volume_id}/")


def test_undo_redo_and_the_picker_answer_as_declared(cast: Any, volume: Any) -> None:
    uid = str(uuid.uuid4())
    stroke_apply(volume, cast.annotator, Role.ANNOTATOR, {
        "uuid": uid, "axis": "z", "index": 1, "points": [[10, 10]], "radius": 3, "value": 1, "mode": "paint"})
    client = _client(cast.annotator)
    undo = client.post(f"/api/volumes/{volume.pk}/strokes/{uid}/undo/")
    assert undo.status_code == 200 and undo.json()["uuid"] == uid
    assert_answer_matches_schema(undo, "post", "/api/volumes/{volume_id}/strokes/{uuid}/undo/")
    picked = client.get(f"/api/volumes/{volume.pk}/layers/manual/value/", {"z": 1, "y": 10, "x": 10})
    assert picked.json() == {"value": 0}
    assert_answer_matches_schema(picked, "get", "/api/volumes/{volume_id}/layers/{layer}/value/")


@pytest.mark.parametrize("path, params, parameter", [
    ("layers/manual/value/", {"z": "1", "y": "2"}, "x"),
    ("layers/manual/value/", {"z": "one", "y": "2", "x": "3"}, "z"),
    ("layers/manual/value/", {"z": "1", "y": "2.5", "x": "3"}, "y"),
    ("layers/manual/value/", {"z": "1", "y": "2", "x": "1" * 30}, "x"),
    ("layers/manual/mesh.glb", {"value": "-1"}, "value"),
    ("layers/manual/mesh.glb", {"value": str(2**63)}, "value"),
])
def test_a_bad_query_parameter_is_a_400_naming_it(cast: Any, volume: Any, path: str, params: dict[str, str],
                                                  parameter: str) -> None:
    response = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/{path}", params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["detail"] == {"parameter": parameter}
