"""The job kinds, registered by the apps that own them.

The jobs app knows no kind. Each app registers its kinds in its ``AppConfig.ready()``::

    register(JobKind(name="import", task="annotations.tasks.volume_import", queue="default",
                     on_worker_lost=volume_import_leftovers_remove))

A kind names the Celery task that runs it and the queue that task goes to (Celery routes by
task name through `task_route`; the reaper tells a lost queue message from a job waiting its
turn by the queue), and the cleanup the reaper runs when it fails a job of that kind whose
worker died (the job's own cleanup never ran). `job_create` refuses a kind nobody registered.

This module imports no Django model, so emportal/celery.py may name `task_route` before
Django is set up.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emportal.jobs.models import Job

KIND_MAX_LENGTH = 32  # Job.kind's column


@dataclass(frozen=True)
class JobKind:
    """One kind of job: what runs it, where, and what to clean when its worker is lost.

    `lock_by_params`: two active jobs of this kind on one volume may run side by side when
    their parameters differ (a report over other layers); otherwise one per volume.
    `on_worker_lost(job)` must be idempotent and must not raise for a job that left nothing.
    """

    name: str
    task: str
    queue: str = "default"
    on_worker_lost: Callable[[Job], object] | None = None
    lock_by_params: bool = False


class UnknownJobKind(ValueError):
    """A job of a kind no app registered: a programming error, refused before any row exists."""


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Register `kind`; registering the same kind again is a no-op, a different one under a
    taken name (or a task already routed to another queue) is refused."""
    if not kind.name or len(kind.name) > KIND_MAX_LENGTH:
        raise ValueError(f"job kind name {kind.name!r} must be 1 to {KIND_MAX_LENGTH} characters")
    taken = _KINDS.get(kind.name)
    if taken is not None and taken != kind:
        raise ValueError(f"job kind {kind.name!r} is already registered as {taken}")
    for other in _KINDS.values():
        if other.task == kind.task and other.queue != kind.queue:
            raise ValueError(f"task {kind.task!r} is routed to {other.queue!r} by kind {other.name!r}, "
                             f"not {kind.queue!r}")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget a kind (tests that register their own)."""
    _KINDS.pop(name, None)


def kind_get(name: str) -> JobKind:
    """The registered kind called `name`; UnknownJobKind if no app registered it."""
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownJobKind(f"unknown job kind {name!r} (registered: {', '.join(sorted(_KINDS))})") from None


def kind_find(name: str) -> JobKind | None:
    """The registered kind called `name`, or None (a row of a kind no app registers any more)."""
    return _KINDS.get(name)


def kinds() -> list[JobKind]:
    """Every registered kind, by name."""
    return [_KINDS[name] for name in sorted(_KINDS)]


def kinds_on_queue(queue: str) -> list[str]:
    """The names of the kinds whose task goes to `queue`."""
    return sorted(kind.name for kind in _KINDS.values() if kind.queue == queue)


def task_route(name: str, args: Any = None, kwargs: Any = None, options: Any = None, task: Any = None,
               **kw: Any) -> dict[str, str] | None:
    """Celery router: a registered kind's task goes to its kind's queue; any other task to
    the default queue (None lets the next router, then task_default_queue, decide)."""
    for kind in _KINDS.values():
        if kind.task == name:
            return {"queue": kind.queue}
    return None
