"""Segment: the active model's prediction of a volume and the regions to label next.

Writes live here (`volume_segment`, `suggestion_dismiss`, `prediction_accept`); the
Celery task (modelloop/tasks.py) only claims the job and calls `volume_segment_run`. The
blocks are modelloop/blocks.py; the science is segmentation.core (blocks, blockwise, active).

Segment writes the non-editable "prediction" layer block by block (the layer version
is bumped before the first block and as each block lands, so viewers watch it fill); each
block keeps the uncertainty sums of its tiles, and the regions to label next are ranked from
those at the end (no second pass), recorded in a SegmentationRun. Until the job succeeds
the layer reads as "writing", and as "partial" if it failed or its worker died
(``selectors.layer_write_state``, in every run payload).
"""
from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.db import transaction

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import class_colors, layer_bump, layer_create, layer_get, layer_lock
from annotations.models import LabelClass, Role, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create
from emportal.realtime import broadcast, volume_group
from segmentation.core.modelfile import TrainedModel, prediction_tta
from segmentation.job_kinds import SEGMENT
from segmentation.modelloop.blocks import (
    block_result,
    block_results,
    blocks_done,
    segment_blocks_work,
    segment_cleanup,
    segment_dir,
    segment_finish,
    segment_plan,
)
from segmentation.modelloop.selectors import run_payload
from segmentation.modelloop.storage import model_weights_path
from segmentation.models import ModelVersion, SegmentationRun
from segmentation.volume_jobs import require_not_running, require_ready, store_result

#: Helper tasks a segment job queues beside its own: each runs blocks nobody has claimed and
#: ends when none is left, so more helpers than free workers cost only a queue message each.
SEGMENT_HELPERS = 8


# ---------------------------------------------------------------- segment
def volume_segment(volume: Volume, user: Any, *, model_version: ModelVersion | None = None, k: int = 6,
                   tile: int | None = None, tta: bool | None = None, block: tuple[int, int, int] | None = None,
                   helpers: int | None = None, enqueue: Any = None) -> Job:
    """Queue a prediction of the volume by `model_version` (default: the active one).

    `block`: the block size (Z, Y, X) instead of blocks.SEGMENT_BLOCK (tests and
    benchmarks; the result does not depend on it). `helpers`: how many helper tasks the job
    queues beside its own (default SEGMENT_HELPERS; 0 runs every block in the job's task).
    `tta`: average the four flips; None (the default) predicts as the model was trained to."""
    require_ready(volume)
    require_not_running(volume, SEGMENT)
    model = model_version or ModelVersion.objects.filter(project_id=volume.project_id, active=True).first()
    if model is None:
        raise ApplicationError("this project has no trained model yet: press Retrain first", code="no_model",
                               status_code=409)
    if model.project_id != volume.project_id:
        raise ApplicationError(f"model v{model.pk} belongs to another project", code="invalid")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise ApplicationError(f"k {k!r} is not an integer in 1..50", code="invalid")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or not 16 <= tile <= 2048):
        raise ApplicationError(f"tile {tile!r} is not an integer in 16..2048", code="invalid")
    if enqueue is None:
        from segmentation.modelloop.tasks import segment_task

        def enqueue(job_id: int) -> None:
            segment_task.delay(job_id)
    params: dict[str, Any] = {"model_version": model.pk, "k": k, "tile": tile,
                              "tta": None if tta is None else bool(tta)}
    if block is not None:
        if len(block) != 3 or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in block):
            raise ApplicationError(f"block {block!r} is not three positive integers", code="invalid")
        params["block"] = list(block)
    if helpers is not None:
        if isinstance(helpers, bool) or not isinstance(helpers, int) or not 0 <= helpers <= 256:
            raise ApplicationError(f"helpers {helpers!r} is not an integer in 0..256", code="invalid")
        params["helpers"] = helpers
    return job_create(kind=SEGMENT, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=enqueue)


def default_tile(shape: tuple[int, int, int]) -> int:
    """Suggestion tile side: 256 px, smaller on small slices so there are several per slice."""
    side = min(shape[1], shape[2])
    return int(max(16, min(256, 2 ** int(math.log2(max(16, side // 2))))))


def _segment_setup(job: Job) -> tuple[Volume, ModelVersion, Any, Any, Any, int]:
    """What the parent and the helpers of a segment job share: the volume, the model row,
    the loaded model, the device, the block plan and the tile size."""
    from segmentation.core.modelfile import load_model, resolve_device

    assert job.volume_id is not None  # a segment job is created with its volume (CASCADE keeps it)
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    model_row = ModelVersion.objects.filter(pk=job.params.get("model_version")).first()
    if model_row is None:
        raise ValueError(f"model version {job.params.get('model_version')} no longer exists")
    device = resolve_device("auto")
    model = load_model(model_weights_path(model_row), device=device)
    block = job.params.get("block")
    plan = segment_plan(volume_zarr_path(volume), volume.shape, block=tuple(block) if block else None)
    tile = int(job.params.get("tile") or default_tile(volume.shape))
    return volume, model_row, model, device, plan, tile


def volume_segment_run(ctx: JobContext) -> SegmentationRun:
    """The segment job's work (its parent task): queue helpers, run blocks beside them, rank.

    Every block nobody has claimed is run by whoever is free: this task and the helper tasks
    it queues on the gpu queue (:func:`segment_block_help`), on any worker of any machine that
    shares the database and MEDIA_ROOT. A block whose worker died is taken over once its claim
    is stale. Progress is the share of finished blocks; a cancel stops every task before its
    next block. The regions to label next are ranked from the scores the blocks kept.
    """
    from segmentation.modelloop.tasks import segment_block_task

    job = ctx.job
    ctx.progress(0.01, f"loading model v{job.params.get('model_version')}")
    assert job.volume_id is not None
    # before the plan, which reads its chunks
    layer = layer_create(Volume.objects.select_related("project").get(pk=job.volume_id), LayerName.PREDICTION)
    volume, model_row, model, device, plan, tile = _segment_setup(job)
    dest = volume_zarr_path(volume)
    k = int(job.params.get("k", 6))
    version = [layer.version]
    seen: set[int] = set()

    def predicting(done: int) -> dict[str, Any]:
        # "writes" marks the layer as being written until this job succeeds (layer_write_state).
        return {"phase": "predicting", "writes": LayerName.PREDICTION, "layer": LayerName.PREDICTION,
                "version": version[0], "blocks": [done, len(plan)], "model_version": model_row.pk}

    def landed() -> int:
        """Bump the layer for blocks finished since last asked (by anyone); report progress."""
        done = set(blocks_done(job.pk, len(plan)))
        if done - seen:
            top = max((max(block_result(job.pk, i).class_voxels, default=0) for i in done - seen), default=0)
            seen.update(done)
            version[0] = layer_bump(layer, max_value=top)
            store_result(ctx, predicting(len(done)))
        ctx.progress(0.02 + 0.93 * len(done) / len(plan), f"predicted block {len(done)} of {len(plan)}")
        return len(done)

    def on_block(_: Any) -> None:
        landed()

    try:
        segment_dir(job.pk).mkdir(parents=True, exist_ok=True)
        with layer_lock(volume, LayerName.PREDICTION):
            store_result(ctx, predicting(0))
            # A version no cached tile carries before the first write: a kill between a block's
            # write and its bump must not leave tiles cached before the job looking current.
            version[0] = layer_bump(layer)
            for _ in range(min(len(plan) - 1, int(job.params.get("helpers", SEGMENT_HELPERS)))):
                segment_block_task.delay(job.pk)
            while True:
                segment_blocks_work(job.pk, dest, plan, model, tile=tile, tta=_tta(job, model),
                                    device=device, should_stop=ctx.cancel_requested, on_block=on_block)
                if landed() == len(plan):
                    break
                time.sleep(0.5)  # blocks still running elsewhere; their claims are taken over if they go stale
            ctx.progress(0.96, "ranking regions to label next")
            t0 = time.perf_counter()
            suggestions, counts, stats = segment_finish(job.pk, dest, plan, tile=tile, k=k,
                                                        heads=model.config.out_channels,
                                                        z_spacing=volume.voxel_z_nm / volume.voxel_x_nm)
            finish_s = time.perf_counter() - t0
            workers = sorted({r.worker for r in block_results(job.pk, plan)})
            version[0] = layer_bump(layer)  # the coarse levels written by the finish
    finally:  # done, failed or cancelled: the block files go; a helper stops at its next block
        segment_cleanup(job.pk)
    names = {v: n for n, v in model.classes.values.items()}
    outputs = {
        "kind": "prediction",
        "version": version[0],
        "timings": {k_: round(v, 3) for k_, v in stats.items()} | {"blocks": len(plan), "finish_s": round(finish_s, 3)},
        "workers": workers,
        "class_voxels": {names.get(v, str(v)): n for v, n in sorted(counts.items()) if v},
        "tile": tile,
        "tta": _tta(job, model),
        "suggestions": [{**s.to_dict(), "score": round(s.score, 6), "dismissed": False} for s in suggestions],
    }
    run = SegmentationRun.objects.create(volume=volume, model_version=model_row, job_id=job.pk,
                                         layer=LayerName.PREDICTION, outputs=outputs)
    job.result = {"phase": "done", "run": run.pk, "writes": LayerName.PREDICTION, "layer": LayerName.PREDICTION,
                  "version": version[0], "model_version": model_row.pk, "suggestions": len(suggestions)}
    job.message = (f"segmented with model v{model_row.pk} by {len(workers)} worker(s); {len(suggestions)} regions "
                   "to label next")
    broadcast(volume_group(volume.pk), {"type": "run", "run": run_payload(run)})
    return run


def segment_block_help(job_id: int) -> int:
    """A helper task of a segment job: run blocks nobody has claimed while the job runs.

    Returns how many it ran (0 when the job already finished, was cancelled, or its parent
    ran every block first). It reports nothing on the job: the parent counts finished blocks.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.state != Job.State.RUNNING or job.cancel_requested:
        return 0
    volume, _, model, device, plan, tile = _segment_setup(job)

    def should_stop() -> bool:
        return not Job.objects.filter(pk=job_id, state=Job.State.RUNNING, cancel_requested=False).exists()

    return segment_blocks_work(job_id, volume_zarr_path(volume), plan, model, tile=tile,
                               tta=_tta(job, model), device=device, should_stop=should_stop)


def _tta(job: Job, model: TrainedModel) -> bool:
    """Whether a segment job averages the four flips: the request's choice, else the model's."""
    asked = job.params.get("tta")
    return prediction_tta(model) if asked is None else bool(asked)


# ---------------------------------------------------------------- suggestions
def suggestion_dismiss(run: SegmentationRun, index: int, user: Any) -> SegmentationRun:
    """Hide one suggested region of a run (for everyone on the volume)."""
    with transaction.atomic():
        run = SegmentationRun.objects.select_for_update().get(pk=run.pk)
        suggestions = list(run.outputs.get("suggestions", []))
        if not 0 <= index < len(suggestions):
            raise ApplicationError(f"run {run.pk} has no suggestion {index}", code="not_found", status_code=404)
        suggestions[index] = {**suggestions[index], "dismissed": True,
                              "dismissed_by": getattr(user, "username", "")}
        run.outputs = {**run.outputs, "suggestions": suggestions}
        run.save(update_fields=["outputs"])
    broadcast(volume_group(run.volume_id), {"type": "run", "run": run_payload(run)})
    return run


def region_thumbnail_png(volume: Volume, *, z: int, y0: int, x0: int, y1: int, x1: int, size: int = 96,
                         overlay: str | None = None) -> bytes:
    """A PNG of one region of slice z, at most `size` px a side, read from the coarsest
    pyramid level that still has `size` px over the region; optionally with a label
    layer blended over it in the class colours."""
    from PIL import Image

    Z, Y, X = volume.shape
    if not (0 <= z < Z and 0 <= y0 < y1 <= Y and 0 <= x0 < x1 <= X):
        raise ApplicationError(f"region z={z} y={y0}:{y1} x={x0}:{x1} is off the volume", code="off_volume")
    if not 8 <= size <= 512:
        raise ApplicationError(f"size {size} is not in 8..512", code="invalid")
    dest = volume_zarr_path(volume)
    level = 0
    while level + 1 < len(volume.levels) and max(y1 - y0, x1 - x0) / 2 ** (level + 1) >= size:
        level += 1
    f = 2 ** level
    ys, xs = slice(y0 // f, max(y0 // f + 1, -(-y1 // f))), slice(x0 // f, max(x0 // f + 1, -(-x1 // f)))
    plane = np.asarray(omezarr.open_level(dest, level)[z, ys, xs], np.float32)
    lo, hi = (volume.window or [float(plane.min()), float(plane.max())])[:2]
    grey = np.clip((plane - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if overlay is not None and layer_get(volume, overlay) is not None:
        labels = np.asarray(omezarr.open_label_level(dest, overlay, level)[z, ys, xs])
        colors = {value: rgba[:3] for value, rgba in class_colors(volume.project_id).items()}
        background = LabelClass.objects.filter(project_id=volume.project_id, name="background").values_list(
            "value", flat=True).first()
        for value, color in colors.items():
            if value == background:
                continue
            mask = labels == value
            rgb[mask] = 0.55 * rgb[mask] + 0.45 * np.array(color, np.float32)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB")
    scale = size / max(img.width, img.height)
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- accept prediction
def prediction_accept(volume: Volume, user: Any, role: Role, data: Mapping[str, Any]) -> Any:
    """Copy the predicted labels under a brush gesture into the manual layer, as one
    logged stroke (so undo, redo and replay treat it like painting)."""
    from annotations.strokes import stroke_accept_prediction

    if layer_get(volume, LayerName.PREDICTION) is None:
        raise ApplicationError("this volume has no prediction yet: press Segment first", code="no_prediction",
                               status_code=409)
    return stroke_accept_prediction(volume, user, role, data)


__all__ = ["SEGMENT_HELPERS", "default_tile", "prediction_accept",
           "region_thumbnail_png", "segment_block_help", "suggestion_dismiss", "volume_segment",
           "volume_segment_run"]
