"""Kinds are registered by the apps that own them: routed, validated and cleaned up from the registry."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from emportal.celery import app as celery_app
from emportal.jobs import registry
from emportal.jobs.models import Job
from emportal.jobs.registry import JobKind, UnknownJobKind
from emportal.jobs.services import job_create, jobs_reap_stale


def _recorder(cleaned: list[int]) -> Callable[[Job], None]:
    def record(job: Job) -> None:
        cleaned.append(job.pk)

    return record


@pytest.fixture
def test_kinds() -> Iterator[dict[str, list[int]]]:
    """Two kinds of a pretend app, each recording the jobs its cleanup was run for."""
    cleaned: dict[str, list[int]] = {"probe": [], "other_probe": []}
    for name, queue in (("probe", "probe_queue"), ("other_probe", "default")):
        registry.register(JobKind(name=name, task=f"tests.tasks.{name}", queue=queue,
                                  on_worker_lost=_recorder(cleaned[name])))
    yield cleaned
    for name in cleaned:
        registry.unregister(name)


def _route(task_name: str) -> str:
    return celery_app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(("task", "queue"), [
    ("annotations.tasks.volume_import", "default"), ("annotations.tasks.label_import", "default"),
    ("segmentation.tasks.retrain", "gpu"), ("segmentation.tasks.segment", "gpu"),
    ("segmentation.tasks.cells", "gpu"), ("segmentation.tasks.report", "default"),
])
def test_a_kind_registered_in_its_apps_ready_is_routed_to_its_queue(task: str, queue: str) -> None:
    assert _route(task) == queue


def test_a_kind_registered_later_is_routed_too_and_other_tasks_go_to_default(test_kinds: Any) -> None:
    assert _route("tests.tasks.probe") == "probe_queue"
    assert _route("emportal.jobs.tasks.reap_stale_jobs") == "default"


def test_every_registered_kind_names_a_task_celery_knows() -> None:
    celery_app.loader.import_default_modules()
    kinds = registry.kinds()
    assert {k.name for k in kinds} >= {"import", "labels", "retrain", "segment", "cells", "report"}
    assert [k.task for k in kinds if k.task not in celery_app.tasks] == []


def test_a_name_taken_by_another_kind_is_refused(test_kinds: Any) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(JobKind(name="probe", task="tests.tasks.elsewhere"))
    with pytest.raises(ValueError, match="routed to"):
        registry.register(JobKind(name="probe_again", task="tests.tasks.probe", queue="gpu"))


@pytest.mark.django_db
def test_an_unknown_kind_is_refused_at_creation(cast: Any) -> None:
    with pytest.raises(UnknownJobKind, match="nobody_registered_this"):
        job_create(kind="nobody_registered_this", project_id=cast.project.pk, user=cast.annotator)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_the_reaper_runs_the_cleanup_of_the_dead_jobs_kind_and_nothing_else(
        cast: Any, settings: Any, test_kinds: dict[str, list[int]]) -> None:
    dead = job_create(kind="probe", project_id=cast.project.pk)
    alive = job_create(kind="other_probe", project_id=cast.project.pk)
    now = timezone.now()
    Job.objects.filter(pk=dead.pk).update(state=Job.State.RUNNING,
                                          heartbeat=now - timedelta(seconds=settings.JOB_STALE_SECONDS + 5))
    Job.objects.filter(pk=alive.pk).update(state=Job.State.RUNNING, heartbeat=now)
    assert jobs_reap_stale() == 1
    assert test_kinds == {"probe": [dead.pk], "other_probe": []}
    assert Job.objects.get(pk=dead.pk).error_code == "worker_lost"


@pytest.mark.django_db
def test_a_failing_cleanup_does_not_stop_the_reaper(cast: Any, settings: Any) -> None:
    def broken(job: Job) -> None:
        raise OSError("disk gone")

    registry.register(JobKind(name="broken_probe", task="tests.tasks.broken_probe", on_worker_lost=broken))
    try:
        stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
        jobs = [job_create(kind="broken_probe", project_id=cast.project.pk) for _ in range(2)]
        Job.objects.filter(pk__in=[j.pk for j in jobs]).update(state=Job.State.RUNNING, heartbeat=stale)
        assert jobs_reap_stale() == 2
    finally:
        registry.unregister("broken_probe")
    assert set(Job.objects.values_list("state", flat=True)) == {Job.State.FAILED}


@pytest.mark.django_db
def test_the_beat_runs_the_reaper(cast: Any, settings: Any) -> None:
    """The beat schedule names the jobs app's reaper task, and that task fails a dead job."""
    celery_app.loader.import_default_modules()
    task_name = celery_app.conf.beat_schedule["reap-stale-jobs"]["task"]
    job = job_create(kind="import", project_id=cast.project.pk)
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, heartbeat=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5))
    assert celery_app.tasks[task_name]() == 1
    assert Job.objects.get(pk=job.pk).state == Job.State.FAILED
