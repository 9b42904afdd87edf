"""Sixteen clients paint overlapping strokes with random disconnects and resends: afterwards the
layer equals the replay of the log, every acknowledged stroke is there, and none is doubled."""
from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from annotations.imaging import omezarr
from annotations.models import Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay
from tests.factories import make_volume
from tests.sockets import volume_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

CLIENTS = 16
STROKES_PER_CLIENT = 6


async def _ack(ws: WebsocketCommunicator, uid: str) -> int:
    while True:
        message = await ws.receive_json_from(timeout=30)
        if message.get("type") == "ack" and message["uuid"] == uid:
            return int(message["version"])


def test_sixteen_clients_with_drops_and_resends_lose_and_double_nothing(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.zeros((2, 64, 64), np.uint8))
    values = list(cast.project.label_classes.filter(kind="semantic").values_list("value", flat=True))
    rng = random.Random(4)
    acked: dict[str, int] = {}

    async def client(k: int) -> None:
        ws = volume_socket(cast.annotator, volume.pk)
        assert (await ws.connect())[0]
        for _ in range(STROKES_PER_CLIENT):
            stroke = {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": rng.randrange(2),
                      "points": [[rng.randrange(64), rng.randrange(64)] for _ in range(3)],
                      "radius": rng.choice([2, 4, 6]), "value": rng.choice(values), "mode": "paint"}
            await ws.send_json_to({"type": "stroke", "stroke": stroke})
            if rng.random() < 0.3:  # the connection drops before the ack arrives: reconnect and resend
                await ws.disconnect()
                ws = volume_socket(cast.annotator, volume.pk)
                assert (await ws.connect())[0]
                await ws.send_json_to({"type": "stroke", "stroke": stroke})
            acked[stroke["uuid"]] = await _ack(ws, stroke["uuid"])
            await asyncio.sleep(0)
        await ws.disconnect()

    async def everyone() -> None:
        await asyncio.gather(*(client(k) for k in range(CLIENTS)))

    async_to_sync(everyone)()

    logged = list(Stroke.objects.filter(layer__volume=volume).values_list("uuid", "version"))
    assert len(acked) == CLIENTS * STROKES_PER_CLIENT
    assert sorted(str(u) for u, _ in logged) == sorted(acked)  # every ack is logged, exactly once
    assert {str(u): v for u, v in logged} == acked              # with the version it was acknowledged with
    layer = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])
    assert np.array_equal(layer_replay(volume, "manual"), layer)
