"""The Celery app. Workers listen on `default` (imports, reports) and `gpu` (training, inference)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emportal.settings")

app = Celery("emportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    "segmentation.tasks.retrain": {"queue": "gpu"},
    "segmentation.tasks.segment": {"queue": "gpu"},
    "segmentation.tasks.cells": {"queue": "gpu"},
}
app.conf.beat_schedule = {
    "reap-stale-jobs": {"task": "segmentation.tasks.reap_stale_jobs", "schedule": 20.0},
}
app.autodiscover_tasks()
