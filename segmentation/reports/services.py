"""Writes of the reports feature: queue a report job, run it, write the phantom's truth layers.

A report reads level 0 of the volume's image and of two of its label layers (organelle
classes and cell instances), measures every cell with
:func:`segmentation.core.features.cell_features`, meshes every cell with
:func:`segmentation.core.meshes.cell_meshes`, and keeps everything under
``MEDIA_ROOT/reports/<id>/``: ``cells.csv``, ``cells.xlsx`` (with the ``columns`` sheet),
``cells.parquet`` and ``meshes/cell_<id>.glb``. The files are written into a hidden
folder first and renamed into place together with the FeatureReport row, so a failed or
cancelled job leaves neither a row nor a half-written folder behind.
"""
from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from annotations.imaging import omezarr
from annotations.layers import layer_create
from annotations.models import LabelClass, LabelLayer, Project, Volume
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_lock
from emportal.errors import ApplicationError
from segmentation.core.classes import default_parents
from segmentation.core.features import DEFAULT_CLASSES, cell_bounding_boxes, cell_features, describe_columns
from segmentation.core.features import intensity_range_of, write_report
from segmentation.core.meshes import cell_meshes, scene_glb
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create, job_running
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport

__all__ = [
    "CELLS_TRUTH_LAYER",
    "MESH_MAX_FACES",
    "REPORT_FORMATS",
    "TRUTH_LAYER",
    "phantom_truth_write",
    "report_classes",
    "report_compute",
    "report_create",
    "report_dir",
    "report_leftovers_remove",
    "report_run",
]

# The feature classes, named as in the paper and in every project's default classes.
FEATURE_CLASSES: tuple[str, ...] = tuple(DEFAULT_CLASSES)
REPORT_FORMATS: dict[str, str] = {"csv": "cells.csv", "xlsx": "cells.xlsx", "parquet": "cells.parquet"}
MESH_DIR = "meshes"
# Triangles per mesh (cell and each organelle class): enough for a smooth 3D view, small GLBs.
MESH_MAX_FACES = 8_000
TRUTH_LAYER = "truth"
CELLS_TRUTH_LAYER = "cells_truth"
_PROGRESS_EVERY_S = 0.5


def report_dir(report: FeatureReport) -> Path:
    """Folder of a report's files."""
    return Path(settings.MEDIA_ROOT) / "reports" / str(report.pk)


def _partial_prefix(job_id: int) -> str:
    return f".partial-{int(job_id)}-"


def report_leftovers_remove(job: Job) -> list[Path]:
    """Delete the hidden ``reports/.partial-<job>-*`` folders a report job left behind.

    A job that raises or is cancelled removes its own folder; a worker killed outright
    (SIGKILL, power loss) cannot, so the reaper calls this when it fails the job
    (segmentation/jobs.py ``_after_failure``). Only that job's folders are touched, so a
    report still being written by another job is safe. Returns the paths removed.
    """
    root = Path(settings.MEDIA_ROOT) / "reports"
    if not root.is_dir():
        return []
    removed = []
    for path in root.glob(_partial_prefix(job.pk) + "*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def report_classes(project: Project) -> dict[str, int]:
    """Feature class name -> the project's value for it, matched by name.

    The project's values differ from the core's defaults (the project has background=1),
    so the report passes the project's values and the core never sees ``background``.
    """
    values = dict(project.label_classes.filter(kind=LabelClass.Kind.SEMANTIC, name__in=FEATURE_CLASSES)
                  .values_list("name", "value"))
    classes = {name: int(values[name]) for name in FEATURE_CLASSES if name in values}
    if not classes:
        raise ApplicationError(f"project {project.name!r} has none of the classes {', '.join(FEATURE_CLASSES)}",
                               code="no_feature_classes", status_code=409)
    return classes


def _layer(volume: Volume, name: str, kind: str) -> LabelLayer:
    layer = volume.layers.filter(name=name).first()
    if layer is None:
        raise ApplicationError(f"this volume has no layer {name!r}", code="unknown_layer", status_code=404)
    if layer.kind != kind:
        raise ApplicationError(f"layer {name!r} holds {layer.kind}, a report needs {kind} there",
                               code="wrong_layer_kind")
    return layer


def report_create(volume: Volume, user: Any, *, labels_layer: str, cells_layer: str,
                  fenestration_closing_nm: float = 0.0, meshes: bool = True,
                  enqueue: Callable[[int], None] | None = None) -> Job:
    """Queue a report job over ``labels_layer`` (classes) and ``cells_layer`` (instances).

    A report with the same parameters already queued or running is returned instead of a
    second one. ``enqueue`` defaults to the Celery task; tests pass their own.
    """
    if volume.state != Volume.State.READY:
        raise ApplicationError(f"volume is {volume.state}", code="volume_not_ready", status_code=409)
    _layer(volume, labels_layer, LabelLayer.Kind.LABELS)
    _layer(volume, cells_layer, LabelLayer.Kind.INSTANCES)
    report_classes(volume.project)
    closing = float(fenestration_closing_nm)
    if not 0.0 <= closing <= 10_000.0:
        raise ApplicationError(f"fenestration_closing_nm {closing} is outside 0..10000 nm", code="invalid")
    params = {"labels_layer": labels_layer, "cells_layer": cells_layer,
              "fenestration_closing_nm": closing, "meshes": bool(meshes)}
    running = Job.objects.filter(kind=REPORT, volume=volume, params=params,
                                 state__in=(Job.State.QUEUED, Job.State.RUNNING)).first()
    if running is not None:
        return running
    if enqueue is None:
        from segmentation.tasks_reports import report_task

        def enqueue(job_id: int) -> None:
            report_task.delay(job_id)

    return job_create(kind=REPORT, project_id=volume.project_id, volume_id=volume.pk, user=user,
                      params=params, enqueue=enqueue, reuse_active=True)


class _Progress:
    """Maps a stage's own 0..1 onto a slice of the job's progress; writes at most every 0.5 s."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.last = 0.0

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            self.ctx.progress(fraction, message)


def report_run(ctx: JobContext) -> FeatureReport:
    """The body of a report job: measure, mesh, write files, create the FeatureReport row."""
    job = ctx.job
    volume = Volume.objects.select_related("project").get(pk=job.volume_id)
    params = job.params
    labels_name, cells_name = str(params["labels_layer"]), str(params["cells_layer"])
    closing = float(params.get("fenestration_closing_nm", 0.0))
    try:
        labels_layer = _layer(volume, labels_name, LabelLayer.Kind.LABELS)
        cells_layer = _layer(volume, cells_name, LabelLayer.Kind.INSTANCES)
        classes = report_classes(volume.project)
    except ApplicationError as exc:
        raise ValueError(exc.message) from None
    dest = volume_zarr_path(volume)
    image = omezarr.open_level(dest, 0)
    labels = omezarr.open_label_level(dest, labels_name, 0)
    cells = omezarr.open_label_level(dest, cells_name, 0)
    progress = _Progress(ctx)

    progress(0.01, "finding cells", force=True)
    boxes = cell_bounding_boxes(cells)
    if not boxes:
        raise ValueError(f"layer {cells_name!r} holds no cells: paint cells or run the cells job first")
    intensity_range = intensity_range_of(image)
    n = len(boxes)
    started = time.monotonic()
    table = cell_features(
        image, labels, cells, voxel_size_nm=volume.voxel_size_nm, classes=classes,
        fenestration_closing_nm=closing, intensity_range=intensity_range,
        on_progress=lambda done, total: progress(0.02 + 0.68 * done / total, f"measured {done} of {total} cells"))
    seconds_features = time.monotonic() - started

    root = Path(settings.MEDIA_ROOT) / "reports"
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f"{_partial_prefix(job.pk)}{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        progress(0.7, "writing tables", force=True)
        columns = describe_columns(classes)
        for fmt, name in REPORT_FORMATS.items():
            write_report(table, partial / name, columns=columns)
        started = time.monotonic()
        mesh_cells: list[int] = []
        if params.get("meshes", True):
            (partial / MESH_DIR).mkdir()
            for done, (cid, box) in enumerate(boxes.items(), start=1):
                meshes = cell_meshes(labels, cells, cid, voxel_size_nm=volume.voxel_size_nm, classes=classes,
                                     box=box, max_faces=MESH_MAX_FACES)
                (partial / MESH_DIR / f"cell_{cid}.glb").write_bytes(scene_glb(meshes))
                mesh_cells.append(int(cid))
                progress(0.72 + 0.26 * done / n, f"meshed {done} of {n} cells")
        seconds_meshes = time.monotonic() - started
        progress(0.99, "saving", force=True)
        summary = {
            "voxel_size_nm": list(volume.voxel_size_nm),
            "fenestration_closing_nm": closing,
            "intensity_range": [float(v) for v in intensity_range],
            "hierarchy": {k: v for k, v in default_parents(list(classes)).items() if v in classes},
            "layer_versions": {labels_name: labels_layer.version, cells_name: cells_layer.version},
            "mesh_cells": mesh_cells,
            "seconds": {"features": round(seconds_features, 3), "meshes": round(seconds_meshes, 3)},
            "means": {col: _finite_mean(table[col]) for col in table.columns
                      if col.endswith(("_volume_um3", "_pct_of_cell", "_solidity", "_fenestrated_pct"))},
        }
        with transaction.atomic():
            report = FeatureReport.objects.create(
                volume=volume, job=job, labels_layer=labels_name, cells_layer=cells_name, classes=classes,
                n_cells=len(table), summary=summary)
            final = report_dir(report)
            if final.exists():  # a leftover of a deleted report with a reused id
                shutil.rmtree(final)
            partial.rename(final)
            rel = final.relative_to(settings.MEDIA_ROOT).as_posix()
            report.files = {fmt: f"{rel}/{name}" for fmt, name in REPORT_FORMATS.items()}
            if mesh_cells:
                report.files["meshes"] = f"{rel}/{MESH_DIR}"
            report.save(update_fields=["files"])
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    job.result = {"report": report.pk, "n_cells": report.n_cells}
    job.message = f"measured {report.n_cells} cells"
    return report


def _finite_mean(series: Any) -> float | None:
    values = np.asarray(series, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def report_compute(volume: Volume, *, labels_layer: str, cells_layer: str, user: Any = None,
                   fenestration_closing_nm: float = 0.0, meshes: bool = True) -> FeatureReport:
    """Create and run a report job in this process (demo loader, commands, tests).

    Raises
    ------
    ApplicationError
        When the job failed (its message says why).
    """
    job = report_create(volume, user, labels_layer=labels_layer, cells_layer=cells_layer,
                        fenestration_closing_nm=fenestration_closing_nm, meshes=meshes,
                        enqueue=lambda job_id: None)
    with job_running(job.pk) as ctx:
        report_run(ctx)
    job.refresh_from_db()
    if job.state != Job.State.SUCCEEDED:
        raise ApplicationError(f"report job {job.pk} {job.state}: {job.message}", code="report_failed",
                               status_code=500)
    return FeatureReport.objects.get(pk=job.result["report"])


def _phantom_to_project(project: Project, phantom_labels: np.ndarray) -> np.ndarray:
    """Phantom class values (0 none, 1 nucleus, ...) -> the project's values, by class name;
    unlabeled phantom voxels become explicit background (as annotations.demo paints them)."""
    from segmentation.core.phantom import CLASS_VALUES

    values = {c.name: c.value for c in project.label_classes.all()}
    lut = np.full(int(max(CLASS_VALUES.values())) + 1, values["background"], np.uint16)
    for name, phantom_value in CLASS_VALUES.items():
        lut[phantom_value] = values[name]
    return lut[phantom_labels]


def _write_whole_layer(volume: Volume, layer: LabelLayer, data: np.ndarray) -> None:
    dest = volume_zarr_path(volume)
    with layer_lock(volume, layer.name):
        level0 = omezarr.open_label_level(dest, layer.name, 0, mode="r+")
        step = int(level0.chunks[0])
        for z0 in range(0, data.shape[0], step):
            level0[z0:z0 + step] = data[z0:z0 + step].astype(level0.dtype, copy=False)
        omezarr.update_label_pyramid(dest, layer.name)
        LabelLayer.objects.filter(pk=layer.pk).update(version=F("version") + 1,
                                                      max_value=Greatest(F("max_value"), int(data.max(initial=0))))
    layer.refresh_from_db(fields=["version", "max_value"])


def phantom_truth_write(volume: Volume, *, seed: int = 7, phantom: Any = None) -> tuple[LabelLayer, LabelLayer]:
    """Write the phantom's full ground truth into read-only layers ``truth`` and ``cells_truth``.

    The demo's phantom volume has only a few painted slices; its truth makes a meaningful
    demo report. ``make_phantom(volume.shape, seed=seed)`` is deterministic, and the volume's
    first plane is compared with it so truth is never written onto another volume.
    Idempotent: layers already written are left as they are. Pass ``phantom`` (the
    :class:`~segmentation.core.phantom.Phantom` the volume was imported from) to skip
    making it again (about 20 s for the demo's 48 x 320 x 320).

    Raises
    ------
    ValueError
        When the volume's image is not that phantom.
    """
    from segmentation.core.phantom import make_phantom

    existing = {layer.name: layer for layer in volume.layers.filter(name__in=(TRUTH_LAYER, CELLS_TRUTH_LAYER))}
    if len(existing) == 2 and all(layer.version > 0 for layer in existing.values()):
        return existing[TRUTH_LAYER], existing[CELLS_TRUTH_LAYER]
    if phantom is None:
        phantom = make_phantom(volume.shape, seed=seed)
    first = np.asarray(omezarr.open_level(volume_zarr_path(volume), 0)[0])
    if tuple(phantom.image.shape) != tuple(volume.shape) or not np.array_equal(first, phantom.image[0]):
        raise ValueError(f"volume {volume.name!r} is not the phantom of shape {volume.shape} and seed {seed}")
    truth = layer_create(volume, TRUTH_LAYER, kind=LabelLayer.Kind.LABELS, editable=False)
    cells = layer_create(volume, CELLS_TRUTH_LAYER, kind=LabelLayer.Kind.INSTANCES, editable=False)
    _write_whole_layer(volume, truth, _phantom_to_project(volume.project, phantom.labels))
    _write_whole_layer(volume, cells, phantom.cells)
    return truth, cells


def reports_recompute_after_voxel_size_change(sender: Any, volume: Volume, user: Any, **_: Any) -> Job | None:
    """Queue the volume's latest report again with its own parameters: every µm³ and µm
    in it was measured with the old voxel size. Connected in SegmentationConfig.ready()."""
    latest = FeatureReport.objects.filter(volume=volume).select_related("job").first()
    if latest is None:
        return None
    params = latest.job.params if latest.job is not None else {}
    try:
        return report_create(volume, user, labels_layer=latest.labels_layer, cells_layer=latest.cells_layer,
                             fenestration_closing_nm=params.get("fenestration_closing_nm", 0.0),
                             meshes=params.get("meshes", True))
    except ApplicationError as exc:
        log.warning("report of volume %s not recomputed after its voxel size changed: %s", volume.pk, exc.message)
        return None
