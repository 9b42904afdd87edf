"""The Celery tasks of the segmentation app, gathered where Celery autodiscovers them."""
from __future__ import annotations

from segmentation.cells.tasks import cells_task  # noqa: F401 - registers segmentation.tasks.cells
from segmentation.modelloop.tasks import (  # noqa: F401 - retrain, pretrain, segment
    pretrain_task,
    retrain_task,
    segment_block_task,
    segment_task,
)
from segmentation.reports.tasks import report_task  # noqa: F401 - registers segmentation.tasks.report
