"""The job kinds of the segmentation app, registered with the jobs app in SegmentationConfig.ready()."""
from __future__ import annotations

from emportal.jobs.registry import JobKind, register

RETRAIN = "retrain"  # fine-tunes a model version (gpu)
PRETRAIN = "pretrain"  # learns a project's encoder from its volumes' unlabeled voxels (gpu); a project job
SEGMENT = "segment"  # writes the "prediction" layer block by block (gpu)
SEGMENT_BLOCK = "segment_block"  # a segment job's helper task; no job row of its own, registered for its route
CELLS = "cells"  # fuses the painted key slices with the prediction into "cells_auto" (gpu)
CELLS_INTERVAL = "cells_interval"  # a cells job's helper task; no job row of its own, registered for its route
REPORT = "report"  # features, tables and meshes of a class layer and a cell layer (CPU)
REPORT_UNIT = "report_unit"  # a report job's helper task; no job row of its own, registered for its route


def job_kinds_register() -> None:
    """Register the model loop's kinds on the gpu queue and the report on the default queue.

    A segment or cells job whose worker died leaves its layer reading as partial from the
    failed job (``layer_write_state``); a segment's block files are removed. A report is
    locked by its parameters, so reports over different layers of one volume may run side by side.
    """
    from segmentation.cells.intervals import cells_leftovers_remove
    from segmentation.modelloop.blocks import segment_leftovers_remove
    from segmentation.modelloop.pretrain import pretrain_leftovers_remove
    from segmentation.modelloop.retrain import retrain_leftovers_remove
    from segmentation.reports.services import report_leftovers_remove

    register(JobKind(name=RETRAIN, task="segmentation.tasks.retrain", queue="gpu",
                     on_worker_lost=retrain_leftovers_remove))
    register(JobKind(name=PRETRAIN, task="segmentation.tasks.pretrain", queue="gpu",
                     on_worker_lost=pretrain_leftovers_remove))
    register(JobKind(name=SEGMENT, task="segmentation.tasks.segment", queue="gpu",
                     on_worker_lost=segment_leftovers_remove))
    register(JobKind(name=SEGMENT_BLOCK, task="segmentation.tasks.segment_block", queue="gpu"))
    register(JobKind(name=CELLS, task="segmentation.tasks.cells", queue="gpu", on_worker_lost=cells_leftovers_remove))
    register(JobKind(name=CELLS_INTERVAL, task="segmentation.tasks.cells_interval", queue="gpu"))
    register(JobKind(name=REPORT, task="segmentation.tasks.report", queue="default",
                     on_worker_lost=report_leftovers_remove, lock_by_params=True))
    register(JobKind(name=REPORT_UNIT, task="segmentation.tasks.report_unit", queue="default"))
