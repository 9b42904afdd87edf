"""The Job row: one per background run (an import, a retrain, a report...)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from emportal.jobs.registry import KIND_MAX_LENGTH


class Job(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)
    ACTIVE = (State.QUEUED, State.RUNNING)

    project = models.ForeignKey("annotations.Project", on_delete=models.CASCADE, related_name="jobs")
    volume = models.ForeignKey("annotations.Volume", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="jobs")
    # No choices: the kinds are whatever the apps register (emportal.jobs.registry); job_create
    # refuses a kind nobody registered.
    kind = models.CharField(max_length=KIND_MAX_LENGTH)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    params = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True, help_text="who claimed it")
    heartbeat = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    lock_key = models.CharField(max_length=80, blank=True, default="",
                                help_text="at most one queued or running job per (volume, lock_key); '' = no limit")

    class Meta:
        # The table keeps the name it had in the segmentation app, so a database moved to
        # this app keeps its rows and the foreign keys to them without copying anything.
        db_table = "segmentation_job"
        ordering = ["-created"]
        indexes = [models.Index(fields=["state", "heartbeat"])]
        # The database, not a check-then-insert, keeps two requests in flight (a double-click)
        # from queueing the same work twice: the second INSERT fails, on SQLite and PostgreSQL.
        constraints = [models.UniqueConstraint(
            fields=["volume", "lock_key"], condition=Q(state__in=["queued", "running"]) & ~Q(lock_key=""),
            name="one_active_job_per_volume_and_lock_key")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"
