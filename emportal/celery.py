"""The Celery app. Workers listen on `default` (imports, reports) and `gpu` (training, inference).

Each job kind's task goes to the queue its app registered (emportal.jobs.registry); any
other task to `default`. Beat runs the reaper that fails jobs whose worker died.
"""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emportal.settings")

app = Celery("emportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = ("emportal.jobs.registry.task_route",)
app.conf.beat_schedule = {
    "reap-stale-jobs": {"task": "emportal.jobs.tasks.reap_stale_jobs", "schedule": 20.0},
}
app.autodiscover_tasks()
