"""The volume websocket: strokes are acknowledged, broadcast to the others, and refused for viewers."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from annotations.consumers import CLOSE_NOT_FOUND
from annotations.models import Stroke
from tests.factories import make_volume
from tests.sockets import volume_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path)


def test_a_stroke_is_acked_to_its_author_and_seen_by_everyone_else(cast: Any, volume: Any) -> None:
    value = cast.project.label_classes.get(name="nucleus").value
    uid = str(uuid.uuid4())

    async def scenario() -> tuple[dict, dict, dict]:
        alice, bob = volume_socket(cast.annotator, volume.pk), volume_socket(cast.viewer, volume.pk)
        assert (await alice.connect())[0] and (await bob.connect())[0]
        hello = await alice.receive_json_from()
        await bob.receive_json_from()
        stroke = {"uuid": uid, "layer": "manual", "axis": "z", "index": 1, "points": [[10, 10], [12, 30]],
                  "radius": 3, "value": value, "mode": "paint"}
        await alice.send_json_to({"type": "stroke", "stroke": stroke})
        ack = await alice.receive_json_from(timeout=10)
        seen = await bob.receive_json_from(timeout=10)
        assert await alice.receive_nothing(timeout=0.5)  # no echo of her own stroke: she has the ack
        await alice.send_json_to({"type": "stroke", "stroke": stroke})  # a resend after a reconnect
        again = await alice.receive_json_from(timeout=10)
        await alice.disconnect()
        await bob.disconnect()
        return hello, ack, seen | {"again": again}

    hello, ack, seen = async_to_sync(scenario)()
    assert hello["type"] == "hello" and hello["role"] == "annotator"
    assert ack == {"type": "ack", "uuid": uid, "version": ack["version"]} and ack["version"] >= 1
    assert seen["type"] == "stroke" and seen["stroke"]["uuid"] == uid and seen["stroke"]["user"] == "annotator"
    assert seen["again"] == {"type": "ack", "uuid": uid, "version": ack["version"]}
    assert Stroke.objects.filter(uuid=uid).count() == 1


def test_a_viewers_stroke_is_refused_with_its_uuid(cast: Any, volume: Any) -> None:
    uid = str(uuid.uuid4())

    async def scenario() -> dict:
        viewer = volume_socket(cast.viewer, volume.pk)
        await viewer.connect()
        await viewer.receive_json_from()
        await viewer.send_json_to({"type": "stroke", "stroke": {"uuid": uid, "axis": "z", "index": 0,
                                                                "points": [[1, 1]], "radius": 1, "value": 2,
                                                                "mode": "paint"}})
        reply = await viewer.receive_json_from(timeout=10)
        await viewer.disconnect()
        return reply

    reply = async_to_sync(scenario)()
    assert reply["type"] == "error" and reply["code"] == "forbidden" and reply["uuid"] == uid
    assert not Stroke.objects.exists()


def test_outsiders_cannot_open_the_socket(cast: Any, volume: Any) -> None:
    async def scenario() -> Any:
        outsider = volume_socket(cast.outsider, volume.pk)
        return await outsider.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected and code == CLOSE_NOT_FOUND
