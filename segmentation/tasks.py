"""Celery tasks of the segmentation app (this module is the one Celery autodiscovers)."""
from __future__ import annotations

from segmentation.tasks_models import cells_task, retrain_task, segment_task  # noqa: F401 - registers retrain/segment/cells
from segmentation.tasks_reports import report_task  # noqa: F401 - registers segmentation.tasks.report
