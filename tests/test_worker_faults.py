"""A worker killed in the middle of a job: the job ends failed with a clear message, nothing
half-done is visible, and a retry on a new worker succeeds."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from django.test import Client

from annotations.models import Volume
from segmentation.jobs import jobs_reap_stale
from segmentation.models import Job
from tests.conftest import ROOT, _require_redis, _service_env

pytestmark = [pytest.mark.services]


def _start_worker(settings: Any, log: Path) -> subprocess.Popen[bytes]:
    """A worker in a process group of its own, so that killing the group kills its pool too."""
    _require_redis()
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "emportal", "worker", "-Q", "default,gpu", "-c", "1",
         "--without-gossip", "--without-mingle", "-n", f"fault-{time.time_ns()}@%h"],
        cwd=ROOT, env=_service_env(settings), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_an_import_whose_worker_is_killed_fails_cleanly_and_a_retry_succeeds(
        cast: Any, transactional_db: Any, settings: Any, tmp_path: Path) -> None:
    settings.DATA_ROOT = tmp_path
    settings.JOB_STALE_SECONDS = 4
    z, y, x = np.indices((96, 768, 768), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", ((x + y + 3 * z) % 251).astype(np.uint8), photometric="minisblack")
    client = Client()
    client.force_login(cast.annotator)
    worker = _start_worker(settings, tmp_path / "w1.log")
    try:
        job_id = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/", {"path": "big.tif"},
                             content_type="application/json").json()["id"]
        _wait(lambda: Job.objects.get(pk=job_id).progress > 0.05, 120, "the import to make progress")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.RUNNING  # nobody told the database yet

    _wait(lambda: jobs_reap_stale() or Job.objects.get(pk=job_id).state == Job.State.FAILED, 60, "the reaper")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "worker_lost" and "stopped responding" in job.message
    assert Volume.objects.get(pk=job.volume_id).state == Volume.State.FAILED
    assert client.get(f"/api/projects/{cast.project.pk}/volumes/").json() == []

    worker = _start_worker(settings, tmp_path / "w2.log")
    try:
        retry = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/", {"path": "big.tif"},
                            content_type="application/json").json()["id"]
        _wait(lambda: Job.objects.get(pk=retry).state in Job.FINISHED, 180, "the retry")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert Job.objects.get(pk=retry).state == Job.State.SUCCEEDED
    assert [v["name"] for v in client.get(f"/api/projects/{cast.project.pk}/volumes/").json()] == ["big"]
