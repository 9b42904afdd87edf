"""Writes of the reports feature: queue a report job, run it, write the phantom's truth layers.

A report reads the volume's image pyramid and two of its label layers (organelle classes and
cell instances) one cell box at a time, each measure at the coarsest level that keeps it within
1 % of level 0 (:func:`segmentation.core.features.cell_features_pyramid`; the level of every
column is recorded in the report's summary), meshes every cell at a coarse level (about
``MESH_VOXELS_ACROSS`` voxels across the cell) simplified for the browser with
:func:`segmentation.core.meshes.cell_meshes`, and keeps everything under
``MEDIA_ROOT/reports/<id>/``: ``cells.csv``, ``cells.xlsx`` (with the ``columns`` sheet),
``cells.parquet`` and ``meshes/cell_<id>.glb``. The files are written into a hidden
folder first and renamed into place together with the FeatureReport row, so a failed or
cancelled job leaves neither a row nor a half-written folder behind. The cells are measured
and meshed in units spread over the job's task and its helper tasks
(:mod:`segmentation.reports.units`); the units' files live in that hidden folder too.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_create, layer_get, layer_write_whole
from annotations.models import LabelClass, LabelLayer, Project, Volume
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.claims import worker_name
from emportal.jobs.models import Job
from emportal.jobs.services import JobCancelled, JobContext, job_create, job_running
from segmentation.core.classes import default_parents
from segmentation.core.features import DEFAULT_CLASSES, describe_columns, intensity_range_of, write_report
from segmentation.core.features.pyramid import (
    ReadLevel,
    box_at_level,
    cell_features_pyramid,
    level_plan,
    pyramid_cell_boxes,
    read_box,
    read_level,
)
from segmentation.core.meshes import cell_meshes, mesh_bytes, scene_glb
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports.units import (
    UNITS_DIR,
    ReportPlan,
    UnitResult,
    partial_file_write,
    partial_find,
    partial_prefix,
    plan_read,
    plan_write,
    unit_read,
    units_done_cells,
    units_merge,
    units_split,
    units_work,
)

log = logging.getLogger(__name__)

__all__ = [
    "MESH_MAX_FACES",
    "REPORT_FORMATS",
    "phantom_truth_write",
    "report_classes",
    "report_compute",
    "report_create",
    "report_dir",
    "report_mesh_full_resolution",
    "report_leftovers_remove",
    "report_run",
    "report_plan",
    "report_unit_compute",
    "report_unit_help",
]

# The feature classes, named as in the paper and in every project's default classes.
FEATURE_CLASSES: tuple[str, ...] = tuple(DEFAULT_CLASSES)
REPORT_FORMATS: dict[str, str] = {"csv": "cells.csv", "xlsx": "cells.xlsx", "parquet": "cells.parquet"}
MESH_DIR = "meshes"
# Triangles per mesh (cell and each organelle class): enough for a smooth 3D view, small GLBs.
MESH_MAX_FACES = 8_000
# Browser meshes are made at the coarsest level where the cell is still this many voxels
# across in Y or X: marching cubes gives ~10x the face budget there, so simplification, not
# the level, sets what the browser sees, at 1/(2^k)^3 of level 0's work.
MESH_VOXELS_ACROSS = 160
# Memory bound of a report: a cell box holding more voxels at a measure's level is read at the
# next coarser level (the summary's raised_levels says which). Measuring holds ~30 bytes per
# voxel of the box (masks, labels, the GLCM keys), so this is ~4 GiB.
CELL_BOX_MAX_VOXELS = 128 * 2**20
# A full-resolution mesh is made on request from level 0 of a cell box up to this size
# (the smoothing and marching cubes hold ~12 bytes per voxel).
FULL_MESH_MAX_VOXELS = 96 * 2**20
_PROGRESS_EVERY_S = 0.5


def report_dir(report: FeatureReport) -> Path:
    """Folder of a report's files."""
    return Path(settings.MEDIA_ROOT) / "reports" / str(report.pk)


def report_leftovers_remove(job: Job) -> list[Path]:
    """Delete the hidden ``reports/.partial-<job>-*`` folders a report job left behind.

    A job that raises or is cancelled removes its own folder; a worker killed outright
    (SIGKILL, power loss) cannot, so the reaper calls this when it fails the job
    (segmentation/jobs.py ``_after_failure``). Only that job's folders are touched, so a
    report still being written by another job is safe; the folder holds the job's unit files
    too (plan, claims, rows). Returns the paths removed.
    """
    root = Path(settings.MEDIA_ROOT) / "reports"
    if not root.is_dir():
        return []
    removed = []
    for path in root.glob(partial_prefix(job.pk) + "*"):
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
    layer = layer_get(volume, name)
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
        from segmentation.reports.tasks import report_task

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


def report_run(ctx: JobContext, *, helpers: int | None = None) -> FeatureReport:
    """The body of a report job: plan, measure and mesh the cells in units, write files, create
    the FeatureReport row.

    The cells are cut into units (:func:`segmentation.reports.units.units_split`) measured by
    whoever claims them: this task and up to ``helpers`` (settings.REPORT_HELPERS when None)
    helper tasks (:func:`report_unit_help`) on any worker sharing the database and MEDIA_ROOT. Progress is
    the share of cells in finished units; a cancel stops every task before its next unit; a
    unit whose worker died is taken over once its claim is stale. The rows are merged in cell
    id order, so the report is the same whoever measured which unit.
    """
    from segmentation.reports.tasks import report_unit_task

    job = ctx.job
    assert job.volume_id is not None  # report jobs are created with their volume (deleted with it)
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
    progress = _Progress(ctx)
    progress(0.01, "finding cells", force=True)
    plan, levels = report_plan(dest, labels_layer=labels_name, cells_layer=cells_name, classes=classes,
                               voxel_size_nm=_voxel(volume), fenestration_closing_nm=closing,
                               meshes=bool(params.get("meshes", True)))
    boxes, n = plan.boxes, len(plan.boxes)

    root = Path(settings.MEDIA_ROOT) / "reports"
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f"{partial_prefix(job.pk)}{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        if plan.meshes:
            (partial / MESH_DIR).mkdir()
        plan_write(partial, plan)
        if helpers is None:
            helpers = int(getattr(settings, "REPORT_HELPERS", 8))
        for _ in range(min(len(plan.units) - 1, helpers)):
            report_unit_task.delay(job.pk)

        def landed(_: int | None = None) -> int:
            done = units_done_cells(partial, plan)
            progress(0.02 + 0.93 * done / n, f"measured {done} of {n} cells")
            return done

        compute = report_unit_compute(dest, partial, plan)
        while True:
            units_work(partial, plan, compute, should_stop=ctx.cancel_requested, on_unit=landed)
            if ctx.cancel_requested():
                raise JobCancelled()
            if landed() == n:
                break
            time.sleep(0.5)  # units still measured elsewhere; their claims are taken over if they go stale
        merged = units_merge([unit_read(partial, i) for i in range(len(plan.units))], describe_columns(classes))
        table = merged.table
        # Gone before the rename; a unit a stale takeover is still measuring fails on its own.
        shutil.rmtree(partial / UNITS_DIR, ignore_errors=True)
        progress(0.96, "writing tables", force=True)
        columns = describe_columns(classes)
        for name in REPORT_FORMATS.values():
            write_report(table, partial / name, columns=columns)
        mesh_cells = [cid for cid in plan.boxes if cid in merged.mesh_levels]
        progress(0.99, "saving", force=True)
        summary = {
            "voxel_size_nm": list(volume.voxel_size_nm),
            "fenestration_closing_nm": closing,
            "intensity_range": list(plan.intensity_range),
            "hierarchy": {k: v for k, v in default_parents(list(classes)).items() if v in classes},
            "layer_versions": {labels_name: labels_layer.version, cells_name: cells_layer.version},
            "mesh_cells": mesh_cells,
            # Which pyramid level each column was measured at, and what a voxel was there.
            "measure_levels": {column: rl.level for column, rl in levels.items()},
            "level_voxel_nm": {str(rl.level): list(rl.spacing_nm) for rl in sorted(set(levels.values()),
                                                                                   key=lambda r: r.level)},
            "mesh_levels": {str(cid): merged.mesh_levels[cid] for cid in mesh_cells},
            # Cells whose box was over CELL_BOX_MAX_VOXELS at a planned level: {cell: {planned: read}}.
            "raised_levels": {str(cid): {str(a): b for a, b in merged.raised[cid].items()}
                              for cid in plan.boxes if cid in merged.raised},
            "cell_boxes": {str(cid): [b[0].start, b[0].stop, b[1].start, b[1].stop, b[2].start, b[2].stop]
                           for cid, b in boxes.items()},
            # Seconds summed over the units (each unit's own time, whichever task measured it).
            "seconds": {"features": round(merged.seconds_features, 3), "meshes": round(merged.seconds_meshes, 3)},
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


def report_plan(dest: Path, *, labels_layer: str, cells_layer: str, classes: dict[str, int],
                voxel_size_nm: tuple[float, float, float], fenestration_closing_nm: float = 0.0,
                meshes: bool = True) -> tuple[ReportPlan, dict[str, ReadLevel]]:
    """What every unit of a report over the store at ``dest`` is measured with, and the level
    each column is read at: cell boxes found at the finest level any measure needs, the
    intensity range there, and the cells cut into units of about settings.REPORT_UNIT_VOXELS
    voxels of work (a cell's box at that level, at most CELL_BOX_MAX_VOXELS).

    Raises ValueError when the cells layer holds no cells.
    """
    image, _, cells = _pyramids(dest, labels_layer, cells_layer)
    levels = level_plan(describe_columns(classes), classes, voxel_size_nm=voxel_size_nm, n_levels=len(image))
    finest = min(levels.values(), key=lambda rl: (rl.level, rl.z_step))
    boxes = pyramid_cell_boxes(cells, finest.level)
    if not boxes:
        raise ValueError(f"layer {cells_layer!r} holds no cells: paint cells or run the cells job first")
    lo, hi = intensity_range_of(image[finest.level])
    shape = tuple(int(s) for s in cells[finest.level].shape)
    work = {cid: min(CELL_BOX_MAX_VOXELS, math.prod(s.stop - s.start for s in box_at_level(box, finest, shape)))
            for cid, box in boxes.items()}
    plan = ReportPlan(labels_layer=labels_layer, cells_layer=cells_layer, classes=dict(classes),
                      voxel_size_nm=voxel_size_nm, fenestration_closing_nm=float(fenestration_closing_nm),
                      intensity_range=(float(lo), float(hi)), meshes=meshes, boxes=boxes,
                      units=units_split(work, int(getattr(settings, "REPORT_UNIT_VOXELS", 64 * 2**20))))
    return plan, levels


def report_unit_help(job_id: int) -> int:
    """A helper task of a report job: measure units nobody has claimed while the job runs.

    Returns how many it measured (0 when the job already finished, was cancelled, or its task
    measured every unit first). It reports nothing on the job: the job's task counts the cells
    of finished units.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.state != Job.State.RUNNING or job.cancel_requested or job.volume_id is None:
        return 0
    partial = partial_find(job_id)
    if partial is None:
        return 0
    try:
        plan = plan_read(partial)
    except FileNotFoundError:  # the job ended between the two looks
        return 0
    volume = Volume.objects.get(pk=job.volume_id)

    def should_stop() -> bool:
        return not Job.objects.filter(pk=job_id, state=Job.State.RUNNING, cancel_requested=False).exists()

    try:
        return units_work(partial, plan, report_unit_compute(volume_zarr_path(volume), partial, plan),
                          should_stop=should_stop)
    except FileNotFoundError:
        if partial.is_dir():
            raise
        return 0  # the job ended (its folder went) while this helper measured a unit


def report_unit_compute(dest: Path, partial: Path, plan: ReportPlan) -> Callable[[int], UnitResult]:
    """Measure and mesh one unit of ``plan``: rows from the plan's boxes and intensity range,
    each cell's meshes written into ``partial``'s meshes folder."""
    image, labels, cells = _pyramids(dest, plan.labels_layer, plan.cells_layer)

    def compute(index: int) -> UnitResult:
        boxes = plan.cells_of(index)
        started = time.monotonic()
        measured = cell_features_pyramid(
            image, labels, cells, voxel_size_nm=plan.voxel_size_nm, classes=plan.classes,
            fenestration_closing_nm=plan.fenestration_closing_nm, intensity_range=plan.intensity_range,
            boxes=boxes, max_box_voxels=CELL_BOX_MAX_VOXELS)
        features_s = time.monotonic() - started
        mesh_levels: dict[int, int] = {}
        if plan.meshes:
            for cid, box in boxes.items():
                rl = _mesh_level(box, plan.voxel_size_nm, len(image))
                meshes = _cell_meshes_at(labels, cells, cid, box, rl, voxel=plan.voxel_size_nm, classes=plan.classes,
                                         max_faces=MESH_MAX_FACES)
                if meshes is not None:
                    partial_file_write(partial, f"{MESH_DIR}/cell_{cid}.glb", scene_glb(meshes))
                    mesh_levels[cid] = rl.level
        return UnitResult(table=measured.table, raised=measured.raised, mesh_levels=mesh_levels,
                          seconds_features=features_s, seconds_meshes=time.monotonic() - started - features_s,
                          worker=worker_name())

    return compute


def _pyramids(dest: Path, labels_name: str, cells_name: str) -> tuple[list[Any], list[Any], list[Any]]:
    """Every level the image and both layers have, finest first."""
    image: list[Any] = []
    labels: list[Any] = []
    cells: list[Any] = []
    while True:
        level = len(image)
        try:
            found = (omezarr.open_level(dest, level), omezarr.open_label_level(dest, labels_name, level),
                     omezarr.open_label_level(dest, cells_name, level))
        except IndexError:
            break
        image.append(found[0])
        labels.append(found[1])
        cells.append(found[2])
    return image, labels, cells


def _voxel(volume: Volume) -> tuple[float, float, float]:
    """The volume's voxel size (Z, Y, X) in nm, as floats."""
    z, y, x = volume.voxel_size_nm
    return float(z), float(y), float(x)


def _mesh_level(box: tuple[slice, slice, slice], voxel: tuple[float, float, float], n_levels: int) -> ReadLevel:
    """The coarsest level at which the cell box is still ``MESH_VOXELS_ACROSS`` voxels across."""
    across_nm = max((box[1].stop - box[1].start) * voxel[1], (box[2].stop - box[2].start) * voxel[2])
    return read_level(across_nm / MESH_VOXELS_ACROSS, voxel, n_levels)


def _cell_meshes_at(labels: list[Any], cells: list[Any], cid: int, box0: tuple[slice, slice, slice], rl: ReadLevel,
                    *, voxel: tuple[float, float, float], classes: dict[str, int],
                    max_faces: int | None) -> dict[str, Any] | None:
    """Meshes of one cell read at level ``rl`` (None when the cell does not show there)."""
    box = box_at_level(box0, rl, cells[rl.level].shape)
    lab = read_box(labels[rl.level], box, z_step=rl.z_step)
    cel = read_box(cells[rl.level], box, z_step=rl.z_step)
    if not np.any(cel == cid):
        return None
    f = rl.yx_factor
    # Centre of the box's first voxel, in level-0 nm: a level-k voxel covers 2^k level-0 voxels.
    origin_nm = (box[0].start * rl.z_step * voxel[0], (box[1].start * f + (f - 1) / 2) * voxel[1],
                 (box[2].start * f + (f - 1) / 2) * voxel[2])
    whole = (slice(0, cel.shape[0]), slice(0, cel.shape[1]), slice(0, cel.shape[2]))
    return cell_meshes(lab, cel, cid, voxel_size_nm=rl.spacing_nm, classes=classes, box=whole,
                       max_faces=max_faces, origin_nm=origin_nm)


def report_mesh_full_resolution(report: FeatureReport, cell_id: int, part: str) -> bytes:
    """PLY of one cell part (``cell`` or a class) made at level 0 of the report's layers, not simplified.

    The browser's meshes are made at a coarse level and simplified; this one is made on request
    from the layers as they are now, for cells whose box at level 0 holds at most
    ``FULL_MESH_MAX_VOXELS``.

    Raises
    ------
    ApplicationError
        ``unknown_cell`` / ``unknown_part`` (404), ``mesh_too_large`` (413).
    """
    box_list = report.summary.get("cell_boxes", {}).get(str(int(cell_id)))
    if box_list is None:
        raise ApplicationError(f"cell {cell_id} is not in report {report.pk}", code="unknown_cell", status_code=404)
    if part != "cell" and part not in report.classes:
        raise ApplicationError(f"part {part!r} is neither 'cell' nor one of {', '.join(report.classes)}",
                               code="unknown_part", status_code=404)
    box = (slice(box_list[0], box_list[1]), slice(box_list[2], box_list[3]), slice(box_list[4], box_list[5]))
    voxels = math.prod(s.stop - s.start for s in box)
    if voxels > FULL_MESH_MAX_VOXELS:
        raise ApplicationError(
            f"cell {cell_id} spans {voxels:,} voxels at full resolution, more than the "
            f"{FULL_MESH_MAX_VOXELS:,} a mesh is made from on request; the 3D view's mesh "
            f"(level {report.summary.get('mesh_levels', {}).get(str(int(cell_id)), 0)}) is the one to download",
            code="mesh_too_large", status_code=413)
    volume = report.volume
    voxel = _voxel(volume)
    try:
        image, labels, cells = _pyramids(volume_zarr_path(volume), report.labels_layer, report.cells_layer)
    except ValueError:
        raise ApplicationError("the report's layers no longer exist", code="unknown_layer", status_code=404) from None
    meshes = _cell_meshes_at(labels, cells, int(cell_id), box, ReadLevel(0, 1, voxel), voxel=voxel,
                             classes=dict(report.classes), max_faces=None)
    if meshes is None or part not in meshes:
        raise ApplicationError(f"cell {cell_id} has no {part} voxels now", code="unknown_part", status_code=404)
    return mesh_bytes(meshes[part], file_type="ply")


def _finite_mean(series: Any) -> float | None:
    values = np.asarray(series, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def report_compute(volume: Volume, *, labels_layer: str, cells_layer: str, user: Any = None,
                   fenestration_closing_nm: float = 0.0, meshes: bool = True, helpers: int = 0) -> FeatureReport:
    """Create and run a report job in this process (demo loader, commands, tests).

    Every unit of cells is measured here unless ``helpers`` helper tasks are queued beside it
    (they need a Celery broker and workers).

    Raises
    ------
    ApplicationError
        When the job failed (its message says why).
    """
    job = report_create(volume, user, labels_layer=labels_layer, cells_layer=cells_layer,
                        fenestration_closing_nm=fenestration_closing_nm, meshes=meshes,
                        enqueue=lambda job_id: None)
    with job_running(job.pk) as ctx:
        report_run(ctx, helpers=helpers)
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

    existing = {layer.name: layer for layer in volume.layers.filter(name__in=(LayerName.TRUTH, LayerName.CELLS_TRUTH))}
    if len(existing) == 2 and all(layer.version > 0 for layer in existing.values()):
        return existing[LayerName.TRUTH], existing[LayerName.CELLS_TRUTH]
    if phantom is None:
        phantom = make_phantom(volume.shape, seed=seed)
    first = np.asarray(omezarr.open_level(volume_zarr_path(volume), 0)[0])
    if tuple(phantom.image.shape) != tuple(volume.shape) or not np.array_equal(first, phantom.image[0]):
        raise ValueError(f"volume {volume.name!r} is not the phantom of shape {volume.shape} and seed {seed}")
    truth = layer_create(volume, LayerName.TRUTH)
    cells = layer_create(volume, LayerName.CELLS_TRUTH)
    layer_write_whole(volume, truth, _phantom_to_project(volume.project, phantom.labels))
    layer_write_whole(volume, cells, phantom.cells)
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
