"""The job kinds of the annotations app, registered with the jobs app in AnnotationsConfig.ready()."""
from __future__ import annotations

from typing import TYPE_CHECKING

from emportal.jobs.registry import JobKind, register

if TYPE_CHECKING:
    from emportal.jobs.models import Job

IMPORT = "import"  # an image volume written into a new volume's OME-Zarr store
LABELS = "labels"  # a label volume imported into a layer of an existing volume


def _import_lost(job: Job) -> None:
    """A volume whose import died is hidden from lists and tiles, as a failed import is."""
    from annotations.models import Volume

    if job.volume_id:
        Volume.objects.filter(pk=job.volume_id, state=Volume.State.IMPORTING).update(state=Volume.State.FAILED)


def job_kinds_register() -> None:
    """Register the import and label-import kinds (both CPU work on the default queue)."""
    from annotations.label_import import label_import_leftovers_remove

    register(JobKind(name=IMPORT, task="annotations.tasks.volume_import", queue="default",
                     on_worker_lost=_import_lost))
    register(JobKind(name=LABELS, task="annotations.tasks.label_import", queue="default",
                     on_worker_lost=label_import_leftovers_remove))
