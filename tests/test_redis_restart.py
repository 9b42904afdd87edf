"""Redis restarted while the app runs: Daphne keeps serving, and websockets and broadcasts work
again without restarting it."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import ROOT, _free_port, _service_env
from tests.factories import make_volume

pytestmark = [pytest.mark.services]


def _redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL)
    _wait_port(port)
    return proc


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


async def _paint(url: str, cookie: str, value: int) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}) as session:
        async with session.ws_connect(url) as ws:
            hello = await asyncio.wait_for(ws.receive_json(), timeout=20)
            assert hello["type"] == "hello"
            uid = str(uuid.uuid4())
            await ws.send_json({"type": "stroke", "stroke": {"uuid": uid, "axis": "z", "index": 0,
                                                             "points": [[5, 5]], "radius": 2, "value": value,
                                                             "mode": "paint"}})
            while True:
                message = await asyncio.wait_for(ws.receive_json(), timeout=20)
                if message["type"] in ("ack", "error"):
                    return message


def test_the_app_recovers_when_redis_restarts(cast: Any, transactional_db: Any, settings: Any,
                                              tmp_path: Path) -> None:
    redis_port, app_port = _free_port(), _free_port()
    redis = _redis(redis_port, tmp_path)
    env = {**_service_env(settings), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(app_port),
                               "emportal.asgi:application"], cwd=ROOT, env=env,
                              stdout=(tmp_path / "daphne.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_port(app_port)
        volume = make_volume(cast.project, tmp_path, data=np.zeros((2, 32, 32), np.uint8))
        value = cast.project.label_classes.get(name="nucleus").value
        client = Client()
        client.force_login(cast.annotator)
        cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
        url = f"ws://127.0.0.1:{app_port}/ws/volumes/{volume.pk}/"
        assert asyncio.run(_paint(url, cookie, value))["type"] == "ack"

        redis.terminate()
        redis.wait()
        redis = _redis(redis_port, tmp_path)

        deadline = time.monotonic() + 30
        while True:
            try:
                reply = asyncio.run(_paint(url, cookie, value))
                break
            except Exception:  # noqa: BLE001 - the first tries may meet stale connections
                assert time.monotonic() < deadline, (tmp_path / "daphne.log").read_text()[-3000:]
                time.sleep(0.5)
        assert reply["type"] == "ack", reply
        assert daphne.poll() is None  # the same Daphne, never restarted
    finally:
        daphne.terminate()
        daphne.wait(timeout=10)
        redis.terminate()
        redis.wait()
