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
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_bump, layer_create, layer_get
from annotations.models import Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create
from emportal.realtime import broadcast, volume_group
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
    own task (segmentation.cells.intervals; default CELLS_HELPERS).
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


def cell_table(cells: np.ndarray, voxel_size_nm: tuple[float, float, float]) -> list[dict[str, Any]]:
    """One row per cell id: voxels, volume (um^3), first/last slice and centroid (ZYX voxels)."""
    ids, counts = np.unique(cells[cells > 0], return_counts=True)
    if ids.size == 0:
        return []
    um3 = float(np.prod(voxel_size_nm)) / 1e9
    boxes = ndi.find_objects(cells.astype(np.int64, copy=False))
    centroids = ndi.center_of_mass(np.ones(cells.shape, np.float32), cells, ids.tolist())
    rows = []
    for cid, n, c in zip(ids.tolist(), counts.tolist(), centroids):
        box = boxes[cid - 1]
        rows.append({"id": int(cid), "voxels": int(n), "volume_um3": float(f"{n * um3:.6g}"),
                     "z0": int(box[0].start), "z1": int(box[0].stop - 1), "slices": int(box[0].stop - box[0].start),
                     "centroid": [round(float(v), 1) for v in c]})
    return rows


def volume_cells_run(ctx: JobContext) -> SegmentationRun:
    """The cells job's work (module docstring)."""
    from segmentation.core.cells import segment_cells
    from segmentation.core.metrics import instance_dice

    job = ctx.job
    assert job.volume_id is not None  # cells jobs are created with their volume (deleted with it)
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    dest = volume_zarr_path(volume)
    method = job.params.get("method", "fusion")
    flow = job.params.get("flow", "dis")
    ctx.progress(0.01, "reading the volume")
    image = np.asarray(omezarr.open_level(dest, 0)[:])
    keys_layer = layer_get(volume, LayerName.CELLS)
    keys = (np.asarray(omezarr.open_label_level(dest, LayerName.CELLS, 0)[:]) if keys_layer is not None
            else np.zeros(image.shape, np.uint32))
    prediction_run = latest_run(volume, LayerName.PREDICTION)
    values = interior_values(prediction_run) if layer_get(volume, LayerName.PREDICTION) is not None else []
    note = ""
    if values:
        interior = np.isin(np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, 0)[:]), values)
    else:
        interior = None
        if method != "flow":
            note = " (no cell-interior prediction: retrain with painted cells and segment for fusion)"
            method = "flow"
    if method != "interior" and not keys.any():
        raise ValueError("the cells layer holds no painted cell to start from")
    interior_arg = interior if interior is not None else np.zeros(image.shape, bool)
    key_z = [z for z in range(keys.shape[0]) if keys[z].any()]
    compare = bool(job.params.get("compare"))
    truth_layer = layer_get(volume, LayerName.CELLS_TRUTH)
    truth = np.asarray(omezarr.open_label_level(dest, LayerName.CELLS_TRUTH, 0)[:]) if truth_layer is not None else None
    methods = [method] + ([m for m in METHODS if m != method and (interior is not None or m == "flow")]
                          if compare and truth is not None else [])
    share = 0.85 / len(methods)
    results: dict[str, np.ndarray] = {}
    tracked, unresolved = 0, 0
    for i, m in enumerate(methods):
        def report(f: float, i: int = i, m: str = m) -> None:
            ctx.progress(0.02 + share * (i + f), f"{m}: {int(100 * f)} %")

        if m == "fusion" and values:  # interval by interval, shared with helper tasks
            results[m], tracked_m, unresolved_m = _fusion_by_intervals(ctx, volume, flow, key_z, values, report)
        else:
            seg = segment_cells(image, interior_arg, keys, method=m, flow=flow, key_indices=key_z or None,
                                on_progress=report)
            results[m], tracked_m, unresolved_m = seg.cells, seg.tracked_regions, len(seg.unresolved)
        if m == method:
            tracked, unresolved = tracked_m, unresolved_m
    cells = results[method]
    ctx.progress(0.88, "writing the cells layer")
    layer = layer_create(volume, LayerName.CELLS_AUTO)
    out = omezarr.open_label_level(dest, LayerName.CELLS_AUTO, 0, mode="r+")
    n_slabs = -(-cells.shape[0] // SLAB)
    top = int(cells.max(initial=0))
    # The version is bumped before each slab is written and once after the last: label
    # tiles are cached by version (their ETag), so a tile cached before a slab changed
    # never looks current afterwards, even when the worker dies mid-loop. "writes" marks
    # the layer partial until this job succeeds (modelloop.selectors.layer_write_state).
    for i, z0 in enumerate(range(0, cells.shape[0], SLAB)):
        z1 = min(z0 + SLAB, cells.shape[0])
        version = layer_bump(layer, max_value=top)
        store_result(ctx, {"phase": "writing", "writes": LayerName.CELLS_AUTO, "layer": LayerName.CELLS_AUTO,
                            "version": version, "blocks": [i, n_slabs]})
        out[z0:z1] = cells[z0:z1].astype(out.dtype, copy=False)
        omezarr.update_label_pyramid(dest, LayerName.CELLS_AUTO, z=(z0, z1))
    version = layer_bump(layer, max_value=top)
    table = cell_table(cells, volume.voxel_size_nm)
    dice: dict[str, Any] = {}
    if truth is not None:
        for m, pred in results.items():
            scored = instance_dice(pred, truth)
            dice[m] = {"cells": {str(k): round(float(v), 6) for k, v in scored["cells"].items()},
                       "mean": round(float(scored["mean"]), 6),
                       "matched": {str(k): int(v) for k, v in scored["matched"].items()}}
    outputs = {"kind": "cells", "method": method, "flow": flow, "version": version, "key_slices": key_z,
               "interior_from": prediction_run.pk if values and prediction_run else None,
               "tracked_regions": tracked, "unresolved": unresolved, "cells": table, "dice": dice,
               "truth_layer": LayerName.CELLS_TRUTH if truth is not None else None}
    run = SegmentationRun.objects.create(volume=volume, job_id=job.pk, layer=LayerName.CELLS_AUTO, outputs=outputs,
                                         model_version=prediction_run.model_version if values and prediction_run
                                         else None)
    job.result = {"phase": "done", "run": run.pk, "writes": LayerName.CELLS_AUTO, "layer": LayerName.CELLS_AUTO,
                  "version": version, "cells": len(table), "method": method}
    mean = f", mean per-cell Dice {dice[method]['mean']:.3f}" if method in dice else ""
    job.message = f"{len(table)} cells by {method}{mean}{note}"
    broadcast(volume_group(volume.pk), {"type": "run", "run": run_payload(run)})
    return run


def _fusion_by_intervals(ctx: JobContext, volume: Volume, flow: str, key_z: list[int], values: list[int],
                         report: Any) -> tuple[np.ndarray, int, int]:
    """The fusion run as key-slice intervals by this task and its helpers, then stitched here."""
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
        return np.asarray(scratch[:]), res.tracked_regions, len(res.unresolved)
    finally:  # done, failed or cancelled: the interval files go; a helper stops at its next interval
        cells_intervals_cleanup(job.pk)


__all__ = ["cell_table", "interior_values", "volume_cells", "volume_cells_run"]
