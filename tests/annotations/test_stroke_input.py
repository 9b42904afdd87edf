"""REST and the volume websocket accept the same strokes: strict JSON types, one set of rules."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from annotations.consumers import CLOSE_NOT_FOUND
from annotations.models import CompleteSlice, Stroke
from annotations.serializers import StrokeInput, validated
from emportal.errors import ApplicationError
from tests.factories import make_volume
from tests.sockets import project_socket, volume_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path)


def _stroke(cast: Any, **change: Any) -> dict[str, Any]:
    value = cast.project.label_classes.get(name="nucleus").value
    return {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": 1, "points": [[10, 10], [12, 30]],
            "radius": 3, "value": value, "mode": "paint", **change}


BAD_STROKES = {
    "a fractional index": {"index": 5.9},
    "an integral float index": {"index": 2.0},
    "a boolean index": {"index": True},
    "a text index": {"index": "2"},
    "an integer uuid": {"uuid": 10**31},  # str() of it is 32 digits, which parse as a UUID
    "a boolean value": {"value": True},
    "a boolean radius": {"radius": True},
    "a numeric layer": {"layer": 5},
    "a boolean coordinate": {"points": [[True, 10]]},
    "a text coordinate": {"points": [["10", 10]]},
    "a point of three numbers": {"points": [[10, 10, 1]]},
}


def _annotator(cast: Any) -> Client:
    client = Client()
    client.force_login(cast.annotator)
    return client


@pytest.mark.parametrize("change", BAD_STROKES.values(), ids=BAD_STROKES.keys())
def test_rest_refuses_a_stroke_whose_fields_are_not_their_json_type(cast: Any, volume: Any, change: Any) -> None:
    response = _annotator(cast).post(f"/api/volumes/{volume.pk}/strokes/", _stroke(cast, **change),
                                     content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert set(response.json()["error"]["detail"]) <= set(change)
    assert not Stroke.objects.exists()


@pytest.mark.parametrize("change", BAD_STROKES.values(), ids=BAD_STROKES.keys())
def test_the_socket_refuses_what_rest_refuses_with_the_same_error(cast: Any, volume: Any, change: Any) -> None:
    stroke = _stroke(cast, **change)
    rest = _annotator(cast).post(f"/api/volumes/{volume.pk}/strokes/", stroke, content_type="application/json")

    async def scenario() -> dict[str, Any]:
        alice = volume_socket(cast.annotator, volume.pk)
        await alice.connect()
        await alice.receive_json_from()
        await alice.send_json_to({"type": "stroke", "stroke": stroke})
        reply = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        return reply

    reply = async_to_sync(scenario)()
    assert reply == {"type": "error", **rest.json()["error"], "uuid": str(stroke["uuid"])}
    assert not Stroke.objects.exists()


def test_a_valid_stroke_still_paints_through_both_doors(cast: Any, volume: Any) -> None:
    response = _annotator(cast).post(f"/api/volumes/{volume.pk}/strokes/", _stroke(cast, index=2),
                                     content_type="application/json")
    assert response.status_code == 201, response.content
    stroke = _stroke(cast, index=3, points=[[10.5, 10], [12, 30.25]])

    async def scenario() -> dict[str, Any]:
        alice = volume_socket(cast.annotator, volume.pk)
        await alice.connect()
        await alice.receive_json_from()
        await alice.send_json_to({"type": "stroke", "stroke": stroke})
        reply = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        return reply

    assert async_to_sync(scenario)()["type"] == "ack"
    assert sorted(Stroke.objects.values_list("index", flat=True)) == [2, 3]
    assert Stroke.objects.get(uuid=stroke["uuid"]).points == [[10.5, 10.0], [12.0, 30.25]]


def test_a_stroke_of_a_million_points_is_refused_with_the_limit(cast: Any, volume: Any) -> None:
    body = json.dumps(_stroke(cast, points=[[1, 2]] * 1_000_000))  # 6 MB: under the body limit
    response = _annotator(cast).post(f"/api/volumes/{volume.pk}/strokes/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["detail"]["points"] == ["1000000 points is more than the 20000 a stroke may have."]
    assert not Stroke.objects.exists()


class _Untouchable(list):
    def __iter__(self) -> Any:
        raise AssertionError("a point was looked at")

    def __getitem__(self, item: Any) -> Any:
        raise AssertionError("a point was looked at")


def test_too_many_points_are_refused_before_any_point_is_checked(cast: Any) -> None:
    points = _Untouchable([[1, 2]] * 20_001)  # DRF's ListField checked every point first: 6-14 s for a million
    with pytest.raises(ApplicationError) as refused:
        validated(StrokeInput, _stroke(cast, points=points))
    assert refused.value.detail == {"points": ["20001 points is more than the 20000 a stroke may have."]}


@pytest.mark.parametrize("message", [
    {"axis": "z", "index": 2.5}, {"axis": "z", "index": True}, {"axis": "z", "index": 2, "complete": "false"},
    {"axis": 1, "index": 2},
], ids=["fractional index", "boolean index", "text complete", "numeric axis"])
def test_the_socket_refuses_a_malformed_complete_slice_mark_like_rest(cast: Any, volume: Any,
                                                                      message: dict[str, Any]) -> None:
    rest = _annotator(cast).post(f"/api/volumes/{volume.pk}/complete-slices/", message,
                                 content_type="application/json")
    assert rest.status_code == 400

    async def scenario() -> dict[str, Any]:
        alice = volume_socket(cast.annotator, volume.pk)
        await alice.connect()
        await alice.receive_json_from()
        await alice.send_json_to({"type": "mark_complete", **message})
        reply = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        return reply

    assert async_to_sync(scenario)() == {"type": "error", **rest.json()["error"]}
    assert not CompleteSlice.objects.exists()


def test_the_socket_refuses_an_undo_naming_a_number(cast: Any, volume: Any) -> None:
    async def scenario() -> dict[str, Any]:
        alice = volume_socket(cast.annotator, volume.pk)
        await alice.connect()
        await alice.receive_json_from()
        await alice.send_json_to({"type": "undo", "uuid": 10**31})
        reply = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        return reply

    reply = async_to_sync(scenario)()
    assert reply["type"] == "error" and reply["code"] == "invalid" and "uuid" in reply["detail"]


@pytest.mark.parametrize("frame", ["not json", "[" * 200_000 + "]" * 200_000])
def test_a_frame_that_is_not_json_is_answered_and_the_socket_stays_open(cast: Any, volume: Any, frame: str) -> None:
    stroke = _stroke(cast)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        alice = volume_socket(cast.annotator, volume.pk)
        await alice.connect()
        await alice.receive_json_from()
        await alice.send_to(text_data=frame)
        refused = await alice.receive_json_from(timeout=10)
        await alice.send_json_to({"type": "stroke", "stroke": stroke})
        ack = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        return refused, ack

    refused, ack = async_to_sync(scenario)()
    assert refused["type"] == "error" and refused["code"] == "parse_error"
    assert ack["type"] == "ack" and ack["uuid"] == stroke["uuid"]


@pytest.mark.parametrize("kind", ["volume", "project"])
def test_a_socket_for_an_id_beyond_64_bits_is_closed_as_not_found(cast: Any, kind: str) -> None:
    async def scenario() -> Any:
        socket = (volume_socket if kind == "volume" else project_socket)(cast.manager, 2**63)
        return await socket.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected and code == CLOSE_NOT_FOUND
