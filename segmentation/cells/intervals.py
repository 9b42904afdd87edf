"""A cells job's fusion as key-slice intervals shared by its task and helper tasks.

Each interval between two painted key slices is its own problem
(:func:`segmentation.core.cell_intervals.fuse_interval`): whoever is free, the job's own
task or a helper task on the gpu queue of any worker sharing MEDIA_ROOT, claims an interval
nobody has claimed (``emportal.jobs.claims``, as the segment job's blocks are claimed) and
writes its fused slices, read one slice at a time from the volume's store, into a scratch
zarr of one-slice chunks in the job's folder (so two intervals never share a chunk). The
interval's result file holds the largest id it wrote. When every interval is done the job's
task stitches the scratch by tracking (:func:`segmentation.core.cell_intervals.stitch`).
An interval is idempotent: a stale claim is taken over and the interval run again.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.models import Volume
from annotations.storage import volume_zarr_path
from emportal.jobs.claims import UnitClaims, worker_name
from emportal.jobs.models import Job
from segmentation.core.cell_intervals import Interval, fuse_interval, key_intervals

__all__ = ["PredictionInterior", "cells_dir", "cells_interval_help", "cells_intervals_cleanup",
           "cells_intervals_run", "cells_leftovers_remove", "scratch_path"]

class PredictionInterior:
    """The prediction's cell interior (its values in ``values``), one slice at a time."""

    def __init__(self, arr: Any, values: list[int]) -> None:
        self.arr, self.values, self.shape = arr, values, arr.shape

    def __getitem__(self, z: Any) -> np.ndarray:
        return np.isin(np.asarray(self.arr[z]), self.values)


def cells_dir(job_id: int) -> Path:
    """Where a cells job's intervals leave their scratch ids and results (shared by every worker)."""
    return Path(settings.MEDIA_ROOT) / "cells" / f"job-{int(job_id)}"


def scratch_path(job_id: int) -> Path:
    return cells_dir(job_id) / "fused.zarr"


def _claims(job_id: int) -> UnitClaims:
    return UnitClaims(cells_dir(job_id), "interval", ".json",
                      stale_seconds=float(getattr(settings, "CELLS_INTERVAL_STALE_SECONDS", 120.0)))


def _inputs(volume: Volume, values: list[int]) -> tuple[Any, Any, Any]:
    dest = volume_zarr_path(volume)
    image = omezarr.open_level(dest, 0)
    keys = omezarr.open_label_level(dest, LayerName.CELLS, 0)
    interior = PredictionInterior(omezarr.open_label_level(dest, LayerName.PREDICTION, 0), values)
    return image, interior, keys


def _work(job_id: int, volume: Volume, params: dict[str, Any], *, should_stop: Callable[[], bool]) -> int:
    """Run every interval nobody has claimed, in order; returns how many this process ran."""
    import zarr

    image, interior, keys = _inputs(volume, list(params["interior_values"]))
    intervals = [Interval(*iv) for iv in params["intervals"]]
    out = zarr.open_array(str(scratch_path(job_id)), mode="r+")
    claims = _claims(job_id)

    def sink(z: int, ids: np.ndarray) -> None:
        out[z] = ids

    def work(i: int) -> None:
        top = fuse_interval(image, interior, keys, intervals[i], sink, flow=params.get("flow", "dis"))
        payload = json.dumps({"top": int(top), "worker": worker_name()}).encode()

        def write(handle: BinaryIO) -> None:
            handle.write(payload)

        claims.done_write(i, write)

    return claims.run(range(len(intervals)), work, should_stop=should_stop)


def cells_intervals_run(job: Job, volume: Volume, *, flow: str, key_z: list[int], values: list[int],
                        on_progress: Callable[[int, int], None], should_stop: Callable[[], bool],
                        enqueue_helper: Callable[[int], None] | None = None) -> tuple[Any, int]:
    """The job task's part: plan the intervals, queue helpers, run intervals beside them, wait for all.

    Returns the scratch ids (a zarr array, not yet stitched) and one above the largest id written.
    The caller stitches them and removes the folder (:func:`cells_intervals_cleanup`).
    """
    import time

    import zarr

    image = omezarr.open_level(volume_zarr_path(volume), 0)
    shape = tuple(int(s) for s in image.shape)
    intervals = key_intervals(shape[0], key_z)
    params = {"flow": flow, "interior_values": values,
              "intervals": [[iv.start, iv.stop, iv.below, iv.above] for iv in intervals]}
    cells_dir(job.pk).mkdir(parents=True, exist_ok=True)
    (cells_dir(job.pk) / "plan.json").write_text(json.dumps(params))
    zarr.create_array(store=str(scratch_path(job.pk)), shape=shape, chunks=(1, *shape[1:]), dtype="uint32",
                      overwrite=True)
    # Each helper runs intervals until none is left; settings.CELLS_HELPERS unless the job says.
    helpers = min(len(intervals) - 1, int(job.params.get("helpers", settings.CELLS_HELPERS)))
    for _ in range(max(0, helpers)):
        if enqueue_helper is not None:
            enqueue_helper(job.pk)
    claims = _claims(job.pk)
    while True:
        _work(job.pk, volume, params, should_stop=should_stop)
        done = claims.done(len(intervals))
        on_progress(len(done), len(intervals))
        if len(done) == len(intervals) or should_stop():
            break
        time.sleep(0.5)  # intervals still running elsewhere; their claims are taken over if they go stale
    if should_stop():
        raise InterruptedError("cancelled")
    top = max(json.loads(claims.done_path(i).read_text())["top"] for i in range(len(intervals)))
    return zarr.open_array(str(scratch_path(job.pk)), mode="r+"), top + 1


def cells_interval_help(job_id: int) -> int:
    """A helper task of a cells job: run intervals nobody has claimed while the job runs.

    Returns how many it ran (0 when the job is over or its folder is gone).
    """
    job = Job.objects.filter(pk=job_id).first()
    plan = cells_dir(job_id) / "plan.json"
    if job is None or job.state != Job.State.RUNNING or job.cancel_requested or not plan.is_file():
        return 0
    assert job.volume_id is not None
    volume = Volume.objects.get(pk=job.volume_id)

    def should_stop() -> bool:
        return not Job.objects.filter(pk=job_id, state=Job.State.RUNNING, cancel_requested=False).exists()

    return _work(job_id, volume, json.loads(plan.read_text()), should_stop=should_stop)


def cells_intervals_cleanup(job_id: int) -> None:
    """Remove a cells job's interval folder (done, failed or cancelled); a helper then stops."""
    shutil.rmtree(cells_dir(job_id), ignore_errors=True)


def cells_leftovers_remove(job: Any) -> None:
    """A cells job whose worker died: its interval folder goes."""
    cells_intervals_cleanup(job.pk)
