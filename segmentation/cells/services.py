"""Cell instances of a volume as a background job: interior + flow propagation + tracking.

`volume_cells` queues a `cells` job; `volume_cells_run` is its work:

* keys: the "cells" layer (instance ids painted with the viewer's instance tool); every
  slice holding an id is a key slice.
* interior: the cell-interior head of the latest prediction when its model learned the
  cell class (voxels predicted as the cell class or any class nested in it); without one,
  fusion and interior cannot run, so the job falls back to flow propagation alone and
  says so in its message.
* output: the non-editable "cells_auto" instances layer, written slab by slab (its
  version bumped before each slab and after the last, and marked partial until the job
  succeeds: see modelloop.selectors.layer_write_state), and a
  SegmentationRun (layer "cells_auto") listing every cell (voxels, um^3, slices spanned,
  centroid) and, when the volume has a ground-truth instances layer ("cells_truth"),
  per-cell Dice (paper Fig 2F), for every method when asked to compare.

Only the default, fusion from a cell-interior prediction without compare, runs with its
memory bounded by slabs; the rest hold the volume whole and are refused above
settings.CELLS_WHOLE_MAX_VOXELS (``volume_too_large``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
from django.conf import settings

from annotations.imaging import chunkio, omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_bump, layer_create, layer_get
from annotations.models import Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create
from emportal.realtime import broadcast, volume_group
from segmentation.core.cell_counts import CellTableCounts, OverlapCounts, cell_table
from segmentation.core.cell_tracking import Resolution
from segmentation.job_kinds import CELLS
from segmentation.modelloop.selectors import latest_run, run_payload
from segmentation.models import SegmentationRun
from segmentation.volume_jobs import require_not_running, require_ready, store_result

METHODS = ("fusion", "flow", "interior")
FLOWS = ("dis", "farneback")
SLAB = 16  # z slices written per pyramid update (the chunk depth)


def volume_cells(volume: Volume, user: Any, *, method: str = "fusion", flow: str = "dis", compare: bool = False,
                 helpers: int | None = None, enqueue: Any = None) -> Job:
    """Queue a `cells` job on the volume's painted key slices.

    `helpers`: how many helper tasks share the fusion's key-slice intervals with the job's
    own task (segmentation.cells.intervals; default settings.CELLS_HELPERS). A run that
    would hold the volume whole (see volume_cells_run) is refused here above
    settings.CELLS_WHOLE_MAX_VOXELS.
    """
    require_ready(volume)
    require_not_running(volume, CELLS)
    if method not in METHODS:
        raise ApplicationError(f"method {method!r} is not one of {', '.join(METHODS)}", code="invalid")
    if flow not in FLOWS:
        raise ApplicationError(f"flow {flow!r} is not one of {', '.join(FLOWS)}", code="invalid")
    keys = layer_get(volume, LayerName.CELLS)
    if method != "interior" and (keys is None or keys.max_value == 0):
        raise ApplicationError("paint cells on a few key slices first (the \"cells\" layer is empty)",
                               code="no_keys", status_code=409)
    values = (interior_values(latest_run(volume, LayerName.PREDICTION))
              if layer_get(volume, LayerName.PREDICTION) is not None else [])
    whole = _whole_reason(method if values or method == "flow" else "flow", values,
                          bool(compare) and layer_get(volume, LayerName.CELLS_TRUTH) is not None)
    if whole is not None:
        require_whole_fits(volume, whole)
    if enqueue is None:
        from segmentation.cells.tasks import cells_task

        def enqueue(job_id: int) -> None:
            cells_task.delay(job_id)
    params: dict[str, Any] = {"method": method, "flow": flow, "compare": bool(compare)}
    if helpers is not None:
        if isinstance(helpers, bool) or not isinstance(helpers, int) or not 0 <= helpers <= 256:
            raise ApplicationError(f"helpers {helpers!r} is not an integer in 0..256", code="invalid")
        params["helpers"] = helpers
    return job_create(kind=CELLS, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=enqueue)


def interior_values(run: SegmentationRun | None) -> list[int]:
    """Label values of the prediction that lie inside a cell: the cell class and every class
    nested in it, from the run's model; [] when that model knows no cell class."""
    if run is None or run.model_version is None:
        return []
    mv = run.model_version
    cell = (mv.config or {}).get("interior_class")
    if not cell or cell not in mv.classes:
        return []
    parents = mv.hierarchy or {}

    def inside(name: str) -> bool:
        seen: set[str] = set()
        while name and name not in seen:
            if name == cell:
                return True
            seen.add(name)
            name = parents.get(name) or ""
        return False

    return sorted(int(v) for n, v in mv.classes.items() if inside(n))


def volume_cells_run(ctx: JobContext) -> SegmentationRun:
    """The cells job's work (module docstring).

    Fusion with a cell-interior prediction and no comparison (the default) holds a few
    slabs, whatever the volume's size: key slices are found in the keys layer's stored
    chunks, the intervals read image, keys and interior a slice at a time, and the stitched
    ids are copied into "cells_auto" slab by slab while the cell table and the Dice against
    truth are counted (segmentation.core.cell_counts). The other methods, the fallback to
    flow and compare hold the whole volume in memory (image, keys, interior, truth and one
    result per method), so they are refused above settings.CELLS_WHOLE_MAX_VOXELS.
    """
    job = ctx.job
    assert job.volume_id is not None  # cells jobs are created with their volume (deleted with it)
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    dest = volume_zarr_path(volume)
    method, flow, compare = job.params.get("method", "fusion"), job.params.get("flow", "dis"), bool(
        job.params.get("compare"))
    prediction_run = latest_run(volume, LayerName.PREDICTION)
    values = interior_values(prediction_run) if layer_get(volume, LayerName.PREDICTION) is not None else []
    note = ""
    if not values and method != "flow":
        note = " (no cell-interior prediction: retrain with painted cells and segment for fusion)"
        method = "flow"
    truth = (omezarr.open_label_level(dest, LayerName.CELLS_TRUTH, 0)
             if layer_get(volume, LayerName.CELLS_TRUTH) is not None else None)
    whole = _whole_reason(method, values, compare and truth is not None)
    if whole is not None:
        require_whole_fits(volume, whole)
    ctx.progress(0.01, "finding the key slices")
    keys = (omezarr.open_label_level(dest, LayerName.CELLS, 0) if layer_get(volume, LayerName.CELLS) is not None
            else None)
    key_z = key_slices(keys) if keys is not None else []
    if method != "interior" and not key_z:
        raise ValueError("the cells layer holds no painted cell to start from")
    if whole is None:  # the default: nothing read whole
        with _fused_by_intervals(ctx, volume, flow, key_z, values, _reporter(ctx, 0, 1, method)) as (scratch, res):
            version, table, overlap = _write_cells(ctx, volume, lambda z0, z1: np.asarray(scratch[z0:z1]),
                                                   top=res.next_id - 1, truth=truth)
        results: dict[str, np.ndarray] = {}
        tracked, unresolved = res.tracked_regions, len(res.unresolved)
    else:
        results, tracked, unresolved = _whole_methods(ctx, volume, method, flow, key_z, values, compare, truth)
        cells = results[method]
        version, table, overlap = _write_cells(ctx, volume, lambda z0, z1: cells[z0:z1],
                                               top=int(cells.max(initial=0)), truth=truth)
    dice: dict[str, Any] = {}
    if overlap is not None:
        dice[method] = _dice_payload(overlap.dice())
        if len(results) > 1:
            from segmentation.core.metrics import instance_dice

            truth_all = np.asarray(truth[:])  # type: ignore[index]  # compare: refused above the limit
            dice.update({m: _dice_payload(instance_dice(pred, truth_all)) for m, pred in results.items()
                         if m != method})
    rows = table.rows(volume.voxel_size_nm)
    outputs = {"kind": "cells", "method": method, "flow": flow, "version": version, "key_slices": key_z,
               "interior_from": prediction_run.pk if values and prediction_run else None,
               "tracked_regions": tracked, "unresolved": unresolved, "cells": rows, "dice": dice,
               "truth_layer": LayerName.CELLS_TRUTH if truth is not None else None}
    run = SegmentationRun.objects.create(volume=volume, job_id=job.pk, layer=LayerName.CELLS_AUTO, outputs=outputs,
                                         model_version=prediction_run.model_version if values and prediction_run
                                         else None)
    job.result = {"phase": "done", "run": run.pk, "writes": LayerName.CELLS_AUTO, "layer": LayerName.CELLS_AUTO,
                  "version": version, "cells": len(rows), "method": method}
    mean = f", mean per-cell Dice {dice[method]['mean']:.3f}" if method in dice else ""
    job.message = f"{len(rows)} cells by {method}{mean}{note}"
    broadcast(volume_group(volume.pk), {"type": "run", "run": run_payload(run)})
    return run


def key_slices(keys: Any) -> list[int]:
    """The slices of the keys layer holding a painted id, reading one slice at a time and
    only those inside chunks the store holds (any other slice is all fill)."""
    stored = chunkio.stored_z_slices(keys)
    candidates = sorted(stored) if stored is not None else range(int(keys.shape[0]))
    return [z for z in candidates if np.asarray(keys[z]).any()]


def _whole_reason(method: str, values: list[int], compare_truth: bool) -> str | None:
    """What in this run holds the volume whole, or None on the slab-bounded path."""
    if compare_truth:
        return "compare (every method against the truth)"
    if method != "fusion":
        return f"method {method!r}" if values else "flow (the fallback without a cell-interior prediction)"
    return None if values else "flow (the fallback without a cell-interior prediction)"


def require_whole_fits(volume: Volume, what: str) -> None:
    """Refuse a run that holds the volume whole when it has more than CELLS_WHOLE_MAX_VOXELS voxels."""
    limit = int(settings.CELLS_WHOLE_MAX_VOXELS)
    voxels = int(np.prod(volume.shape, dtype=np.int64))
    if voxels > limit:
        raise ApplicationError(
            f"{what} holds the whole volume in memory and this one has {voxels} voxels, over the limit of "
            f"{limit} (EMPORTAL_CELLS_WHOLE_MAX_VOXELS); method fusion without compare, from a cell-interior "
            "prediction, runs slab by slab at any size", code="volume_too_large", status_code=413)


def _reporter(ctx: JobContext, i: int, n: int, m: str) -> Any:
    share = 0.85 / n

    def report(f: float) -> None:
        ctx.progress(0.02 + share * (i + f), f"{m}: {int(100 * f)} %")

    return report


def _whole_methods(ctx: JobContext, volume: Volume, method: str, flow: str, key_z: list[int], values: list[int],
                   compare: bool, truth: Any) -> tuple[dict[str, np.ndarray], int, int]:
    """Every method asked (``method`` first, the others when comparing) on the whole volume in memory."""
    from segmentation.core.cells import CellMethod, segment_cells
    from segmentation.core.propagation import FlowMethod

    dest = volume_zarr_path(volume)
    ctx.progress(0.01, "reading the volume")
    image = np.asarray(omezarr.open_level(dest, 0)[:])
    keys = (np.asarray(omezarr.open_label_level(dest, LayerName.CELLS, 0)[:]) if key_z
            else np.zeros(image.shape, np.uint32))
    interior = (np.isin(np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, 0)[:]), values) if values
                else np.zeros(image.shape, bool))
    methods = [method] + ([m for m in METHODS if m != method and (values or m == "flow")]
                          if compare and truth is not None else [])
    results: dict[str, np.ndarray] = {}
    tracked, unresolved = 0, 0
    for i, m in enumerate(methods):
        report = _reporter(ctx, i, len(methods), m)
        if m == "fusion" and values:  # interval by interval, shared with helper tasks
            with _fused_by_intervals(ctx, volume, flow, key_z, values, report) as (scratch, res):
                results[m], tracked_m, unresolved_m = np.asarray(scratch[:]), res.tracked_regions, len(res.unresolved)
        else:
            seg = segment_cells(image, interior, keys, method=cast(CellMethod, m), flow=cast(FlowMethod, flow),
                                key_indices=key_z or None, on_progress=report)
            results[m], tracked_m, unresolved_m = seg.cells, seg.tracked_regions, len(seg.unresolved)
        if m == method:
            tracked, unresolved = tracked_m, unresolved_m
    return results, tracked, unresolved


def _write_cells(ctx: JobContext, volume: Volume, read: Callable[[int, int], np.ndarray], *, top: int,
                 truth: Any) -> tuple[int, CellTableCounts, OverlapCounts | None]:
    """Copy the ids into "cells_auto" slab by slab, counting the cell table and the overlap with truth.

    ``read(z0, z1)`` gives slices z0 .. z1 - 1; ``top`` is the largest id. Returns the
    layer's final version and the counts.
    """
    dest = volume_zarr_path(volume)
    ctx.progress(0.88, "writing the cells layer")
    layer = layer_create(volume, LayerName.CELLS_AUTO)
    out = omezarr.open_label_level(dest, LayerName.CELLS_AUTO, 0, mode="r+")
    depth = int(out.shape[0])
    n_slabs = -(-depth // SLAB)
    table, overlap = CellTableCounts(), OverlapCounts() if truth is not None else None
    # The version is bumped before each slab is written and once after the last: label
    # tiles are cached by version (their ETag), so a tile cached before a slab changed
    # never looks current afterwards, even when the worker dies mid-loop. "writes" marks
    # the layer partial until this job succeeds (modelloop.selectors.layer_write_state).
    for i, z0 in enumerate(range(0, depth, SLAB)):
        z1 = min(z0 + SLAB, depth)
        version = layer_bump(layer, max_value=top)
        store_result(ctx, {"phase": "writing", "writes": LayerName.CELLS_AUTO, "layer": LayerName.CELLS_AUTO,
                            "version": version, "blocks": [i, n_slabs]})
        slab = read(z0, z1)
        out[z0:z1] = slab.astype(out.dtype, copy=False)
        omezarr.update_label_pyramid(dest, LayerName.CELLS_AUTO, z=(z0, z1))
        table.add(slab, z0)
        if overlap is not None:
            overlap.add(slab, np.asarray(truth[z0:z1]))
    version = layer_bump(layer, max_value=top)
    return version, table, overlap


def _dice_payload(scored: Any) -> dict[str, Any]:
    return {"cells": {str(k): round(float(v), 6) for k, v in scored["cells"].items()},
            "mean": round(float(scored["mean"]), 6),
            "matched": {str(k): int(v) for k, v in scored["matched"].items()}}


@contextmanager
def _fused_by_intervals(ctx: JobContext, volume: Volume, flow: str, key_z: list[int], values: list[int],
                        report: Callable[[float], None]) -> Iterator[tuple[Any, Resolution]]:
    """The fusion run as key-slice intervals by this task and its helpers, stitched here.

    Yields the stitched ids (a scratch zarr in the job's folder) and the stitch's
    resolution; the folder is removed on leaving, done, failed or cancelled (a helper then
    stops at its next interval).
    """
    from segmentation.cells.intervals import PredictionInterior, cells_intervals_cleanup, cells_intervals_run
    from segmentation.cells.tasks import cells_interval_task
    from segmentation.core.cell_intervals import stitch

    job = ctx.job
    try:
        scratch, first_new_id = cells_intervals_run(
            job, volume, flow=flow, key_z=key_z, values=values,
            on_progress=lambda done, total: report(0.9 * done / total), should_stop=ctx.cancel_requested,
            enqueue_helper=lambda job_id: cells_interval_task.delay(job_id))
        prediction = omezarr.open_label_level(volume_zarr_path(volume), LayerName.PREDICTION, 0)
        res = stitch(scratch, PredictionInterior(prediction, values), first_new_id=first_new_id)
        report(1.0)
        yield scratch, res
    finally:
        cells_intervals_cleanup(job.pk)


__all__ = ["cell_table", "interior_values", "key_slices", "require_whole_fits", "volume_cells", "volume_cells_run"]
