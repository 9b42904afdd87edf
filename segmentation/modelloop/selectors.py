"""Reads of the model loop: model versions and segmentation runs as the API and panels show them,
and whether a job-written layer is whole."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from annotations.models import Volume
from emportal.jobs.models import Job
from segmentation.models import ModelVersion, SegmentationRun


def finite(value: Any) -> float | None:
    """JSON has no NaN: non-finite numbers become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def model_payload(model: ModelVersion) -> dict[str, Any]:
    """What the API and the panel show of a version."""
    dice = {k: finite(v) for k, v in (model.val_dice or {}).items()}
    values = [v for v in dice.values() if v is not None]
    return {
        "id": model.pk,
        "project": model.project_id,
        "volume": model.volume_id,
        "parent": model.parent_id,
        "job": model.job_id,
        "active": model.active,
        "classes": model.classes,
        "hierarchy": model.hierarchy,
        "labels_hash": model.labels_hash,
        "labeled_voxels": model.labeled_voxels,
        "curve": model.curve,
        "val_dice": dice,
        "mean_val_dice": round(float(np.mean(values)), 6) if values else None,
        "config": model.config,
        "created_by": model.created_by.username if model.created_by else None,
        "created": model.created.isoformat() if model.created else None,
    }


def models_compare(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Two versions side by side, with the per-class change in validation Dice (b - a)."""
    pa, pb = model_payload(a), model_payload(b)
    classes = sorted(set(pa["val_dice"]) | set(pb["val_dice"]))
    delta = {c: (None if pa["val_dice"].get(c) is None or pb["val_dice"].get(c) is None
                 else round(pb["val_dice"][c] - pa["val_dice"][c], 6)) for c in classes}
    return {"a": pa, "b": pb, "classes": classes, "delta": delta,
            "same_labels": bool(a.labels_hash) and a.labels_hash == b.labels_hash}


def run_payload(run: SegmentationRun) -> dict[str, Any]:
    """A run as the panels read it; ``layer_state`` says whether its layer still holds
    only finished runs' output (see :func:`layer_write_state`)."""
    return {"id": run.pk, "volume": run.volume_id, "model_version": run.model_version_id, "job": run.job_id,
            "layer": run.layer, "outputs": run.outputs, "created": run.created.isoformat() if run.created else None,
            "layer_state": layer_write_state(run.volume_id, run.layer)}


def layer_write_state(volume_id: int, layer: str) -> dict[str, Any]:
    """Whether a job-written layer ("prediction", "cells_auto") is whole, being written or partial.

    A segment or cells job records ``"writes": <layer>`` in its result before its first
    write to the layer, so the newest such job tells the layer's state:

    * ``"complete"``: it succeeded (or no job ever wrote the layer this way); the layer is
      that job's output, the one its latest run describes.
    * ``"writing"``: it is queued or running; blocks land one by one.
    * ``"partial"``: it failed or was cancelled after writing some blocks (its worker may
      have been killed): the layer mixes its blocks with the previous output, which the
      latest run no longer describes; the next successful job makes it complete again.

    Returns {"state", "job" (id or None), "job_state", "message"}.
    """
    job = (Job.objects.filter(volume_id=volume_id, result__writes=layer).order_by("-pk")
           .only("pk", "state", "message", "result").first())
    if job is None:
        return {"state": "complete", "job": None, "job_state": None, "message": ""}
    if job.state == Job.State.SUCCEEDED:
        state, message = "complete", ""
    elif job.state in (Job.State.QUEUED, Job.State.RUNNING):
        state, message = "writing", f"job {job.pk} is writing the {layer} layer"
    else:
        state = "partial"
        message = (f"the {layer} layer is partial: job {job.pk} {job.state} while writing it"
                   f" ({job.message}); run it again")
    return {"state": state, "job": job.pk, "job_state": job.state, "message": message}


def latest_run(volume: Volume, layer: str) -> SegmentationRun | None:
    """The newest run that wrote `layer` of the volume (its suggestions, its cells table)."""
    return SegmentationRun.objects.filter(volume=volume, layer=layer).order_by("-created", "-pk").first()
