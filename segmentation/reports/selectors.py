"""Reads of the reports feature: which reports a volume or project has, and what they hold."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from annotations.access import volume_for_user
from annotations.layer_names import LayerName
from annotations.models import LabelLayer, Project, Role, Volume
from emportal.jobs.models import Job
from segmentation.core.features import describe_columns
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports.services import MESH_DIR, REPORT_FORMATS, report_dir

__all__ = [
    "report_cells_table",
    "report_default_layers",
    "report_for_user",
    "report_list_for_project",
    "report_list_for_volume",
    "report_mesh_path",
    "report_payload",
    "report_file_path",
    "report_jobs_active",
]

# Layer names preferred as defaults, best first: complete truth (the demo phantom's), then
# computed outputs, then the hand-painted layers.
_LABEL_PREFERENCE = (LayerName.TRUTH, LayerName.PREDICTION, LayerName.MANUAL)
_CELL_PREFERENCE = (LayerName.CELLS_TRUTH, LayerName.CELLS_AUTO, LayerName.CELLS)


def report_for_user(user: Any, report_id: int, *, min_role: Role = Role.VIEWER) -> tuple[FeatureReport, Role]:
    """The report and the user's role on its volume's project (404 for outsiders)."""
    report = FeatureReport.objects.filter(pk=report_id).values_list("volume_id", flat=True).first()
    if report is None:
        raise Http404("not found")
    volume, role = volume_for_user(user, report, min_role=min_role)
    found = FeatureReport.objects.select_related("volume", "volume__project").get(pk=report_id)
    found.volume = volume
    return found, role


def report_list_for_volume(volume: Volume) -> QuerySet[FeatureReport]:
    return FeatureReport.objects.filter(volume=volume).order_by("-created", "-pk")


def report_list_for_project(project: Project) -> list[dict[str, Any]]:
    """The newest report of every ready volume of the project (volumes without one left out)."""
    out = []
    for volume in project.volumes.filter(state=Volume.State.READY).order_by("name"):
        report = report_list_for_volume(volume).first()
        if report is not None:
            out.append(report_payload(report))
    return out


def report_default_layers(volume: Volume) -> dict[str, Any]:
    """Layers a report can use, and the default pick for each role."""
    layers = list(volume.layers.all())
    labels = [layer.name for layer in layers if layer.kind == LabelLayer.Kind.LABELS]
    cells = [layer.name for layer in layers if layer.kind == LabelLayer.Kind.INSTANCES]

    def pick(names: list[str], preference: tuple[str, ...]) -> str | None:
        return next((name for name in preference if name in names), names[0] if names else None)

    return {"labels_layers": labels, "cells_layers": cells,
            "labels_layer": pick(labels, _LABEL_PREFERENCE), "cells_layer": pick(cells, _CELL_PREFERENCE)}


def report_file_path(report: FeatureReport, fmt: str) -> Path:
    """Path of one of the report's table files; Http404 when it has none of that format."""
    rel = report.files.get(fmt) if fmt in REPORT_FORMATS else None
    path = Path(settings.MEDIA_ROOT) / rel if rel else None
    if path is None or not path.is_file():
        raise Http404("not found")
    return path


def report_mesh_path(report: FeatureReport, cell_id: int) -> Path:
    path = report_dir(report) / MESH_DIR / f"cell_{int(cell_id)}.glb"
    if not report.files.get("meshes") or not path.is_file():
        raise Http404("not found")
    return path


def report_payload(report: FeatureReport) -> dict[str, Any]:
    """What the API says about a report (no table rows: see :func:`report_cells_table`)."""
    volume = report.volume
    project = volume.project
    base = f"/api/reports/{report.pk}"
    versions = report.summary.get("layer_versions", {})
    current = dict(volume.layers.filter(name__in=list(versions)).values_list("name", "version"))
    colors = dict(project.label_classes.values_list("name", "color"))
    return {
        "id": report.pk,
        "volume": {"id": volume.pk, "name": volume.name, "shape": list(volume.shape),
                   "voxel_size_nm": list(volume.voxel_size_nm)},
        "project": {"id": project.pk, "name": project.name},
        "job": report.job_id,
        "created": report.created.isoformat(),
        "labels_layer": report.labels_layer,
        "cells_layer": report.cells_layer,
        "classes": report.classes,
        "colors": {name: colors[name] for name in report.classes if name in colors},
        "hierarchy": report.summary.get("hierarchy", {}),
        "fenestration_closing_nm": report.summary.get("fenestration_closing_nm", 0.0),
        "n_cells": report.n_cells,
        "means": report.summary.get("means", {}),
        "stale": any(current.get(name, -1) != version for name, version in versions.items()),
        "mesh_cells": report.summary.get("mesh_cells", []),
        # The pyramid level each column was measured at (0 = full resolution) and its voxel size.
        "measure_levels": report.summary.get("measure_levels", {}),
        "level_voxel_nm": report.summary.get("level_voxel_nm", {}),
        "mesh_levels": report.summary.get("mesh_levels", {}),
        "raised_levels": report.summary.get("raised_levels", {}),
        "downloads": {
            **{fmt: f"{base}/download/{fmt}/" for fmt in REPORT_FORMATS if fmt in report.files},
            **({"meshes": f"{base}/meshes.zip"} if report.files.get("meshes") else {}),
        },
        "cells_url": f"{base}/cells/",
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value


def report_cells_table(report: FeatureReport) -> dict[str, Any]:
    """The per-cell table as ``{"columns": [{name, unit, description}], "rows": [[...], ...]}``.

    Read from the Parquet file (exact dtypes); NaN ("does not apply") becomes null.
    """
    table = pd.read_parquet(report_file_path(report, "parquet"))
    described = describe_columns(report.classes)
    columns = [{"name": name, "unit": described.get(name, ("", ""))[0],
                "description": described.get(name, ("", ""))[1]} for name in table.columns]
    rows = [[_json_value(v) for v in row] for row in table.itertuples(index=False, name=None)]
    return {"columns": columns, "rows": rows}


def report_jobs_active(volume: Volume) -> QuerySet[Job]:
    return Job.objects.filter(volume=volume, kind=REPORT,
                              state__in=(Job.State.QUEUED, Job.State.RUNNING)).order_by("-created")
