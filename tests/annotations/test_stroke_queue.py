"""The volume socket's stroke queue (group commit) and its one-membership-per-process fan-out."""
from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import numpy as np
import pytest
from asgiref.sync import async_to_sync

from annotations import socket_groups, stroke_queue, strokes
from annotations.imaging import omezarr
from annotations.models import Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay
from tests.factories import make_volume
from tests.sockets import volume_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path, data=np.zeros((2, 64, 64), np.uint8))


def _payload(cast: Any, k: int) -> dict:
    value = cast.project.label_classes.get(name="nucleus").value
    return {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": k % 2,
            "points": [[5 + 3 * k, 5], [5 + 3 * k, 50]], "radius": 2, "value": value, "mode": "paint"}


async def _reply(ws: Any, uid: str) -> dict:
    while True:
        message = await ws.receive_json_from(timeout=30)
        if message.get("uuid") == uid and message["type"] in ("ack", "error"):
            return message


def test_strokes_arriving_during_a_batch_form_the_next_batch_and_are_acked_in_order(
        cast: Any, volume: Any, monkeypatch: Any) -> None:
    batches: list[list[str]] = []
    release = threading.Event()
    real = strokes.strokes_apply

    def held(vol: Any, items: Any) -> Any:  # the first batch waits until all others are queued
        batches.append([data["uuid"] for _, _, data in items])
        if len(batches) == 1:
            release.wait(timeout=30)
        return real(vol, items)

    monkeypatch.setattr(strokes, "strokes_apply", held)
    payloads = [_payload(cast, k) for k in range(6)]

    async def scenario() -> list[dict]:
        sockets = [volume_socket(cast.annotator, volume.pk) for _ in payloads]
        for ws in sockets:
            assert (await ws.connect())[0]
            await ws.receive_json_from()  # hello
        await sockets[0].send_json_to({"type": "stroke", "stroke": payloads[0]})
        while not batches:
            await asyncio.sleep(0.01)
        for ws, p in zip(sockets[1:], payloads[1:]):
            await ws.send_json_to({"type": "stroke", "stroke": p})
        pending = stroke_queue.stroke_queue()._pending
        for _ in range(3000):  # the consumers queue their strokes behind the held batch
            if len(pending.get(volume.pk, [])) == len(payloads) - 1:
                break
            await asyncio.sleep(0.01)
        release.set()
        replies = [await _reply(ws, p["uuid"]) for ws, p in zip(sockets, payloads)]
        for ws in sockets:
            await ws.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    assert batches == [[payloads[0]["uuid"]], [p["uuid"] for p in payloads[1:]]]
    assert [r["type"] for r in replies] == ["ack"] * 6
    assert [r["version"] for r in replies] == list(range(1, 7))  # arrival order is version order
    layer = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])
    assert np.array_equal(layer_replay(volume, "manual"), layer) and Stroke.objects.count() == 6


def test_a_batch_that_fails_outright_is_retried_stroke_by_stroke(cast: Any, volume: Any, monkeypatch: Any) -> None:
    real = strokes.strokes_apply
    poisoned = _payload(cast, 1)

    def fragile(vol: Any, items: Any) -> Any:
        if any(data["uuid"] == poisoned["uuid"] for _, _, data in items):
            raise OSError("disk full")
        return real(vol, items)

    monkeypatch.setattr(strokes, "strokes_apply", fragile)
    queue = stroke_queue.StrokeQueue()
    good = [_payload(cast, 0), _payload(cast, 2)]

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(queue.apply(volume, cast.annotator, Role.ANNOTATOR, p)
                                      for p in (good[0], poisoned, good[1])), return_exceptions=True)

    first, bad, last = async_to_sync(scenario)()
    assert isinstance(bad, OSError)
    assert first.version == 1 and last.version == 2
    assert set(Stroke.objects.values_list("uuid", flat=True)) == {uuid.UUID(p["uuid"]) for p in good}


def test_every_other_socket_of_a_process_gets_each_echo_once_and_a_reopened_hub_still_delivers(
        cast: Any, volume: Any) -> None:
    async def round_(n: int) -> list[list[str]]:
        sockets = [volume_socket(cast.annotator, volume.pk) for _ in range(n)]
        for ws in sockets:
            assert (await ws.connect())[0]
            await ws.receive_json_from()  # hello
        sent = _payload(cast, n)
        await sockets[0].send_json_to({"type": "stroke", "stroke": sent})
        got = [[await sockets[0].receive_json_from(timeout=10)]]  # the sender: its ack, and no echo
        for ws in sockets[1:]:
            got.append([await ws.receive_json_from(timeout=10)])
        for ws in sockets:
            assert await ws.receive_nothing(timeout=0.3)  # no second copy
            await ws.disconnect()
        return [[m["type"] for m in g if m.get("uuid", m.get("stroke", {}).get("uuid")) == sent["uuid"]]
                for g in got]

    async def scenario() -> tuple[list[list[str]], list[list[str]]]:
        first = await round_(3)
        loop_hubs = socket_groups._hubs.get(asyncio.get_running_loop(), {})
        assert not loop_hubs  # the last socket to leave closed the hub
        return first, await round_(2)

    first, second = async_to_sync(scenario)()
    assert first == [["ack"], ["stroke"], ["stroke"]] and second == [["ack"], ["stroke"]]


def test_an_echo_goes_out_at_once_and_the_next_ones_gather_into_one_frame(
        cast: Any, volume: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(socket_groups, "FRAME_S", 3.0)
    sent = [_payload(cast, k) for k in range(3)]

    async def scenario() -> list[Any]:
        painter, watcher = volume_socket(cast.annotator, volume.pk), volume_socket(cast.viewer, volume.pk)
        for ws in (painter, watcher):
            assert (await ws.connect())[0]
            await ws.receive_json_from()  # hello
        frames: list[Any] = []
        for stroke in sent:
            await painter.send_json_to({"type": "stroke", "stroke": stroke})
            await _reply(painter, stroke["uuid"])
            if not frames:  # after a quiet spell the echo does not wait for the frame interval
                frames.append(await watcher.receive_json_from(timeout=2))
        frames.append(await watcher.receive_json_from(timeout=10))
        assert await painter.receive_nothing(timeout=0.5)  # the painter has its acks, no echoes
        for ws in (painter, watcher):
            await ws.disconnect()
        return frames

    first, second = async_to_sync(scenario)()
    assert first["type"] == "stroke" and first["stroke"]["uuid"] == sent[0]["uuid"]
    assert second["type"] == "batch" and [e["stroke"]["uuid"] for e in second["events"]] == [
        s["uuid"] for s in sent[1:]]
