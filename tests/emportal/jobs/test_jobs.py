"""Jobs end in a clear state whatever happens to their work."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from annotations.job_kinds import IMPORT
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobNotClaimed, job_cancel, job_create, job_running, jobs_reap_stale
from segmentation.job_kinds import CELLS, REPORT, RETRAIN, SEGMENT

pytestmark = pytest.mark.django_db


def _job(cast: Any) -> Job:
    return job_create(kind=IMPORT, project_id=cast.project.pk, user=cast.annotator)


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


def test_a_refusal_keeps_its_code_and_a_server_fault_is_never_the_users_invalid_input(cast: Any) -> None:
    refused = _job(cast)
    with job_running(refused.pk):
        raise ApplicationError("this layer has no labels", code="no_labels")
    refused.refresh_from_db()
    assert (refused.state, refused.error_code, refused.message) == (Job.State.FAILED, "no_labels",
                                                                    "this layer has no labels")
    for fault in (OSError(28, "No space left on device"), KeyError("level")):
        job = _job(cast)
        with job_running(job.pk):
            raise fault
        job.refresh_from_db()
        assert job.state == Job.State.FAILED and job.error_code == "internal", (fault, job.error_code)
        assert job.message.startswith("internal error") and "Traceback" in job.log


def test_a_job_is_claimed_once(cast: Any) -> None:
    job = _job(cast)
    with job_running(job.pk):
        with pytest.raises(JobNotClaimed):
            with job_running(job.pk):
                pass


def test_cancel_stops_a_running_job_at_its_next_progress_report(cast: Any) -> None:
    job = _job(cast)
    went_on = []
    with job_running(job.pk) as ctx:
        job_cancel(Job.objects.get(pk=job.pk))
        ctx.progress(0.3)  # raises JobCancelled, which job_running turns into the cancelled state
        went_on.append(True)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and not went_on


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


def test_reading_the_jobs_changes_no_job(cast: Any, settings: Any) -> None:
    """Failing a dead job is the beat's work: a GET of the list or of the job leaves it running."""
    job = _job(cast)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING,
                                         heartbeat=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 1))
    before = Job.objects.values().get(pk=job.pk)
    client = Client()
    client.force_login(cast.viewer)
    listed = client.get(f"/api/projects/{cast.project.pk}/jobs/").json()
    one = client.get(f"/api/jobs/{job.pk}/").json()
    assert [j["state"] for j in listed] == ["running"] and one["state"] == "running"
    assert Job.objects.values().get(pk=job.pk) == before
    assert jobs_reap_stale() == 1  # the reaper still fails it


def _stale_running(cast: Any, settings: Any, kind: str) -> Job:
    job = job_create(kind=kind, project_id=cast.project.pk, user=cast.annotator)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING,
                                         heartbeat=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5))
    return job


def test_the_reaper_deletes_the_hidden_folders_of_a_report_whose_worker_died(cast: Any, settings: Any) -> None:
    dead = _stale_running(cast, settings, REPORT)
    alive = job_create(kind=REPORT, project_id=cast.project.pk, user=cast.annotator)
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
    from segmentation.modelloop.storage import retrain_weights_path
    from segmentation.models import ModelVersion

    dead = _stale_running(cast, settings, RETRAIN)
    published = _stale_running(cast, settings, RETRAIN)  # died after its row committed
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

    from emportal.jobs import services as jobs

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
    heartbeat = Job.objects.get(pk=job.pk).heartbeat
    assert heartbeat is not None and heartbeat > timezone.now() - timedelta(minutes=1)


# ---------------------------------------------------------------- one active job per volume and kind
def test_a_second_job_of_the_same_kind_on_a_volume_is_refused_by_the_database(cast: Any, tmp_path: Path) -> None:
    """job_create itself (not a check before it) refuses: the INSERT meets the unique index."""
    from emportal.jobs.services import JobBusy
    from tests.factories import make_volume

    volume = make_volume(cast.project, tmp_path)
    first = job_create(kind=RETRAIN, project_id=cast.project.pk, volume_id=volume.pk)
    with pytest.raises(JobBusy) as refused:
        job_create(kind=RETRAIN, project_id=cast.project.pk, volume_id=volume.pk)
    assert refused.value.status_code == 409 and refused.value.detail["job"]["id"] == first.pk
    # Other kinds, and the same kind once the first has finished, go ahead.
    job_create(kind=SEGMENT, project_id=cast.project.pk, volume_id=volume.pk)
    Job.objects.filter(pk=first.pk).update(state=Job.State.SUCCEEDED)
    again = job_create(kind=RETRAIN, project_id=cast.project.pk, volume_id=volume.pk)
    assert Job.objects.filter(volume=volume, kind=RETRAIN).count() == 2 and again.state == Job.State.QUEUED


def test_a_report_with_the_same_parameters_returns_the_active_one(cast: Any, tmp_path: Path) -> None:
    from tests.factories import make_volume

    volume = make_volume(cast.project, tmp_path)
    params = {"labels_layer": "manual", "cells_layer": "cells"}
    first = job_create(kind=REPORT, project_id=cast.project.pk, volume_id=volume.pk, params=params,
                       reuse_active=True)
    same = job_create(kind=REPORT, project_id=cast.project.pk, volume_id=volume.pk, params=dict(params),
                      reuse_active=True)
    other = job_create(kind=REPORT, project_id=cast.project.pk, volume_id=volume.pk,
                       params={**params, "meshes": False}, reuse_active=True)
    assert same.pk == first.pk and other.pk != first.pk


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_retrain_requests_racing_each_other_start_one_job(cast: Any, tmp_path: Path) -> None:
    """A double-click fires two POSTs at once; threads fire six at a real database."""
    import threading

    from tests.factories import make_volume

    volume = make_volume(cast.project, tmp_path)
    barrier = threading.Barrier(6)
    answers: list[tuple[int, dict[str, Any]]] = []

    def post() -> None:
        from django.db import connection

        client = Client()
        client.force_login(cast.annotator)
        barrier.wait()
        try:
            response = client.post(f"/api/volumes/{volume.pk}/retrain/", {"minutes": 1},
                                   content_type="application/json")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    jobs = list(Job.objects.filter(volume=volume, kind=RETRAIN))
    assert len(jobs) == 1
    assert sorted(status for status, _ in answers) == [202] + [409] * 5
    refused = [body for status, body in answers if status == 409]
    assert all(b["error"]["code"] == "job_running" and b["error"]["detail"]["job"]["id"] == jobs[0].pk
               for b in refused)


# ---------------------------------------------------------------- queued jobs whose message was lost
def _queued(cast: Any, kind: str, *, age_s: float, volume: Any = None) -> Job:
    job = job_create(kind=kind, project_id=cast.project.pk, volume_id=volume.pk if volume else None)
    Job.objects.filter(pk=job.pk).update(created=timezone.now() - timedelta(seconds=age_s))
    job.refresh_from_db()
    return job


def test_a_queued_job_no_worker_took_on_an_idle_queue_is_failed(cast: Any, settings: Any) -> None:
    lost = _queued(cast, SEGMENT, age_s=settings.JOB_QUEUED_SECONDS + 5)
    young = _queued(cast, SEGMENT, age_s=1)
    assert jobs_reap_stale() == 1
    lost.refresh_from_db()
    young.refresh_from_db()
    assert (lost.state, lost.error_code) == (Job.State.FAILED, "queue_lost") and "start it again" in lost.message
    assert young.state == Job.State.QUEUED
    with pytest.raises(JobNotClaimed):  # a message that turns up late runs nothing
        with job_running(lost.pk):
            pass


def test_a_queued_job_waiting_behind_a_long_job_of_its_queue_stays_queued(cast: Any, settings: Any) -> None:
    waiting = _queued(cast, SEGMENT, age_s=settings.JOB_QUEUED_SECONDS * 10)
    running = _queued(cast, RETRAIN, age_s=settings.JOB_QUEUED_SECONDS * 11)
    Job.objects.filter(pk=running.pk).update(state=Job.State.RUNNING, started=timezone.now() - timedelta(hours=1),
                                             heartbeat=timezone.now())
    other_queue = _queued(cast, IMPORT, age_s=settings.JOB_QUEUED_SECONDS + 5)
    assert jobs_reap_stale() == 1
    assert Job.objects.get(pk=waiting.pk).state == Job.State.QUEUED
    assert Job.objects.get(pk=other_queue.pk).error_code == "queue_lost"  # its queue (default) is idle


def test_a_queued_job_overtaken_by_a_later_job_of_its_queue_is_failed(cast: Any, settings: Any) -> None:
    skipped = _queued(cast, CELLS, age_s=settings.JOB_QUEUED_SECONDS + 60)
    later = _queued(cast, RETRAIN, age_s=settings.JOB_QUEUED_SECONDS + 30)
    Job.objects.filter(pk=later.pk).update(state=Job.State.RUNNING, started=timezone.now(), heartbeat=timezone.now())
    assert jobs_reap_stale() == 1
    assert Job.objects.get(pk=skipped.pk).error_code == "queue_lost"
    assert Job.objects.get(pk=later.pk).state == Job.State.RUNNING
