"""Jobs end in a clear state whatever happens to their work."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from segmentation.jobs import JobCancelled, JobNotClaimed, job_cancel, job_create, job_running, jobs_reap_stale
from segmentation.models import Job

pytestmark = pytest.mark.django_db


def _job(cast: Any) -> Job:
    return job_create(kind=Job.Kind.IMPORT, project_id=cast.project.pk, user=cast.annotator)


def test_a_job_that_finishes_is_succeeded_with_full_progress(cast: Any) -> None:
    job = _job(cast)
    with job_running(job.pk) as ctx:
        ctx.progress(0.5, "half way")
        ctx.job.result = {"answer": 42}
    job.refresh_from_db()
    assert (job.state, job.progress, job.result) == (Job.State.SUCCEEDED, 1.0, {"answer": 42})


def test_a_job_that_raises_is_failed_with_the_message(cast: Any) -> None:
    job = _job(cast)
    with job_running(job.pk):
        raise ValueError("shape (3, 4) is not 3D")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "invalid_input"
    assert "not 3D" in job.message and "Traceback" in job.log


def test_a_job_is_claimed_once(cast: Any) -> None:
    job = _job(cast)
    with job_running(job.pk):
        with pytest.raises(JobNotClaimed):
            with job_running(job.pk):
                pass


def test_cancel_stops_a_running_job_at_its_next_progress_report(cast: Any) -> None:
    job = _job(cast)
    with job_running(job.pk) as ctx:
        job_cancel(Job.objects.get(pk=job.pk))
        with pytest.raises(JobCancelled):
            ctx.progress(0.3)
        raise JobCancelled()
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED


def test_cancel_of_a_queued_job_is_immediate_and_it_never_runs(cast: Any) -> None:
    job = _job(cast)
    assert job_cancel(job).state == Job.State.CANCELLED
    with pytest.raises(JobNotClaimed):
        with job_running(job.pk):
            pass


def test_a_job_whose_worker_died_is_failed_by_the_reaper(cast: Any, settings: Any) -> None:
    job = _job(cast)
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, heartbeat=stale)
    fresh = _job(cast)
    Job.objects.filter(pk=fresh.pk).update(state=Job.State.RUNNING, heartbeat=timezone.now())
    assert jobs_reap_stale() == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "worker_lost"
    assert fresh.state == Job.State.RUNNING


def test_the_jobs_api_reaps_before_it_answers(cast: Any, settings: Any) -> None:
    job = _job(cast)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING,
                                         heartbeat=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 1))
    client = Client()
    client.force_login(cast.viewer)
    listed = client.get(f"/api/projects/{cast.project.pk}/jobs/").json()
    assert [j["state"] for j in listed] == ["failed"]


def _stale_running(cast: Any, settings: Any, kind: str) -> Job:
    job = job_create(kind=kind, project_id=cast.project.pk, user=cast.annotator)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING,
                                         heartbeat=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5))
    return job


def test_the_reaper_deletes_the_hidden_folders_of_a_report_whose_worker_died(cast: Any, settings: Any) -> None:
    dead = _stale_running(cast, settings, Job.Kind.REPORT)
    alive = job_create(kind=Job.Kind.REPORT, project_id=cast.project.pk, user=cast.annotator)
    root = Path(settings.MEDIA_ROOT) / "reports"
    left = root / f".partial-{dead.pk}-0123abcd"
    (left / "meshes").mkdir(parents=True)
    (left / "cells.csv").write_text("id\n1\n")
    other = root / f".partial-{alive.pk}-89abcdef"  # another job's report, still being written
    other.mkdir()
    kept = root / "7"
    kept.mkdir()
    assert jobs_reap_stale() == 1
    assert not left.exists() and other.is_dir() and kept.is_dir()


def test_the_reaper_deletes_the_weights_of_a_retrain_that_died_before_its_version_row(
        cast: Any, settings: Any) -> None:
    from segmentation.models import ModelVersion
    from segmentation.training_services import retrain_weights_path

    dead = _stale_running(cast, settings, Job.Kind.RETRAIN)
    published = _stale_running(cast, settings, Job.Kind.RETRAIN)  # died after its row committed
    files = {job.pk: retrain_weights_path(job) for job in (dead, published)}
    for path in files.values():
        path.write_bytes(b"weights")
    tmp = files[dead.pk].with_name(files[dead.pk].name + ".tmp")
    tmp.write_bytes(b"half")
    ModelVersion.objects.create(project=cast.project, job=published, weights=f"models/{files[published.pk].name}")
    assert jobs_reap_stale() == 2
    assert not files[dead.pk].exists() and not tmp.exists()
    assert files[published.pk].read_bytes() == b"weights"


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_write_that_fails_does_not_end_the_beat(cast: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy database (SQLite "database is locked") must not stop the beat, or the reaper would kill a live job."""
    import threading
    import time

    from django.db import OperationalError

    from segmentation import jobs

    job = _job(cast)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, heartbeat=timezone.now() - timedelta(hours=1))
    real_now, calls = timezone.now, []

    def now_failing_first() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real_now()

    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(jobs.timezone, "now", now_failing_first)
    stop = threading.Event()
    beat = threading.Thread(target=jobs._beat, args=(job.pk, stop))
    beat.start()
    deadline = time.time() + 10
    while len(calls) < 3 and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    beat.join(timeout=5)
    monkeypatch.undo()
    assert len(calls) >= 3  # it went on beating after the failure
    assert Job.objects.get(pk=job.pk).heartbeat > timezone.now() - timedelta(minutes=1)
