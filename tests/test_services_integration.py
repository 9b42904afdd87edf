"""Through the real services: Redis, a Celery worker process and the channel layer."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import tifffile
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client

from annotations.models import Volume
from emportal.jobs.models import Job
from tests.factories import gradient_volume, volume_of
from tests.sockets import project_socket, receive_messages

pytestmark = [pytest.mark.services]


def test_an_import_runs_on_the_worker_and_its_progress_arrives_over_the_websocket(
        cast: Any, celery_worker: Any, settings: Any, tmp_path: Path) -> None:
    settings.DATA_ROOT = tmp_path
    tifffile.imwrite(tmp_path / "bx1.tif", gradient_volume((24, 600, 700)), photometric="minisblack")
    client = Client()
    client.force_login(cast.annotator)

    async def watch() -> list[dict[str, Any]]:
        communicator = project_socket(cast.viewer, cast.project.pk)
        connected, _ = await communicator.connect()
        assert connected
        response = await sync_to_async(client.post)(
            f"/api/projects/{cast.project.pk}/volumes/import-path/",
            {"path": "bx1.tif", "name": "Bx1", "voxel_size_nm": [4, 4, 4]},
            content_type="application/json")
        assert response.status_code == 202, response.content
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            events += [event["job"] for event in await receive_messages(communicator, timeout=120)]
            if events[-1]["state"] in ("succeeded", "failed", "cancelled"):
                break
        await communicator.disconnect()
        return events

    events = async_to_sync(watch)()
    assert events[-1]["state"] == "succeeded", events[-1]
    progress = [e["progress"] for e in events if e["state"] == "running"]
    assert len(progress) >= 3 and progress == sorted(progress)
    job = Job.objects.get(pk=events[-1]["id"])
    volume = volume_of(job)
    assert volume.state == Volume.State.READY and volume.shape == (24, 600, 700)
    assert len(volume.levels) == 2
