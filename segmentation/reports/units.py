"""A report's cells as units of work, measured by whoever claims them.

A report job cuts its cells, in id order, into units of about ``REPORT_UNIT_VOXELS`` voxels of
work (:func:`units_split`: a few seconds to minutes each). Everything a unit needs is in the
plan (:class:`ReportPlan`), which the job's task writes before anyone measures, so every task
measures with the same boxes, intensity range and parameters whatever machine it runs on. The
job's task and its helper tasks claim units through :class:`emportal.jobs.claims.UnitClaims`
in ``<partial>/.units/``; a unit writes its cells' meshes straight into ``<partial>/meshes/``
and its rows, with what else the report's summary needs, as ``unit-<i>.parquet``, renamed into
place last. The job's task merges the units in unit order (so cell id order) with
:func:`units_merge`. A unit's result depends only on the plan, so the report is the same
whichever task measured which unit, and a unit taken over from a dead worker is measured again.
"""
from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from emportal.jobs.claims import UnitClaims, worker_name

__all__ = [
    "PLAN_NAME",
    "UNITS_DIR",
    "ReportPlan",
    "UnitResult",
    "partial_file_write",
    "partial_find",
    "partial_prefix",
    "plan_read",
    "plan_write",
    "unit_claims",
    "unit_read",
    "unit_write",
    "units_done_cells",
    "units_merge",
    "units_split",
    "units_work",
]

Box = tuple[slice, slice, slice]
UNITS_DIR = ".units"
PLAN_NAME = "plan.json"
_META_KEY = b"emportal_unit"


def partial_prefix(job_id: int) -> str:
    """Name prefix of a report job's hidden folder under ``MEDIA_ROOT/reports``."""
    return f".partial-{int(job_id)}-"


def partial_find(job_id: int) -> Path | None:
    """The hidden folder a running report job measures into (None once it is renamed or removed)."""
    root = Path(settings.MEDIA_ROOT) / "reports"
    found = sorted(p for p in root.glob(partial_prefix(job_id) + "*") if (p / UNITS_DIR / PLAN_NAME).is_file())
    return found[0] if found else None


def partial_file_write(partial: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``partial/rel`` through a temporary file in the units folder, so a
    helper finishing a unit after the job ended writes nothing (that folder is gone) and a
    file taken over from a dead worker is replaced whole."""
    tmp = partial / UNITS_DIR / f".{Path(rel).name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, partial / rel)


@dataclass(frozen=True)
class ReportPlan:
    """What every unit of a report is measured with: layers, classes, voxel size, parameters,
    the level-0 box of every cell and the cell ids of each unit (in id order)."""

    labels_layer: str
    cells_layer: str
    classes: dict[str, int]
    voxel_size_nm: tuple[float, float, float]
    fenestration_closing_nm: float
    intensity_range: tuple[float, float]
    meshes: bool
    boxes: dict[int, Box]
    units: list[list[int]]

    def cells_of(self, index: int) -> dict[int, Box]:
        """The boxes of unit ``index``'s cells, in id order."""
        return {cid: self.boxes[cid] for cid in self.units[index]}

    def to_json(self) -> str:
        return json.dumps({
            "labels_layer": self.labels_layer, "cells_layer": self.cells_layer, "classes": self.classes,
            "voxel_size_nm": list(self.voxel_size_nm), "fenestration_closing_nm": self.fenestration_closing_nm,
            "intensity_range": list(self.intensity_range), "meshes": self.meshes,
            "boxes": {str(c): [[s.start, s.stop] for s in b] for c, b in self.boxes.items()},
            "units": self.units,
        })

    @classmethod
    def from_json(cls, text: str) -> ReportPlan:
        d = json.loads(text)
        z, y, x = (float(v) for v in d["voxel_size_nm"])
        lo, hi = (float(v) for v in d["intensity_range"])
        boxes = {int(c): (slice(*b[0]), slice(*b[1]), slice(*b[2])) for c, b in d["boxes"].items()}
        return cls(labels_layer=str(d["labels_layer"]), cells_layer=str(d["cells_layer"]),
                   classes={str(k): int(v) for k, v in d["classes"].items()}, voxel_size_nm=(z, y, x),
                   fenestration_closing_nm=float(d["fenestration_closing_nm"]), intensity_range=(lo, hi),
                   meshes=bool(d["meshes"]), boxes=dict(sorted(boxes.items())),
                   units=[[int(c) for c in unit] for unit in d["units"]])


def units_split(work: Mapping[int, int], unit_voxels: int) -> list[list[int]]:
    """Cell ids in id order, cut into consecutive units of at most ``unit_voxels`` voxels of
    ``work`` each (a cell with more is a unit of its own)."""
    if unit_voxels < 1:
        raise ValueError(f"unit_voxels must be positive, got {unit_voxels}")
    units: list[list[int]] = []
    load = 0
    for cid in sorted(work):
        w = max(0, int(work[cid]))
        if not units or load + w > unit_voxels:
            units.append([])
            load = 0
        units[-1].append(int(cid))
        load += w
    return units


def unit_claims(partial: Path) -> UnitClaims:
    """The units of a report measuring into ``partial`` (settings.REPORT_UNIT_STALE_SECONDS:
    a claim untouched that long belongs to a dead worker and is taken over)."""
    return UnitClaims(partial / UNITS_DIR, "unit", ".parquet",
                      stale_seconds=float(getattr(settings, "REPORT_UNIT_STALE_SECONDS", 120)))


def plan_write(partial: Path, plan: ReportPlan) -> None:
    """Write the plan where helpers find it (``<partial>/.units/plan.json``, made here)."""
    folder = partial / UNITS_DIR
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{PLAN_NAME}.{os.getpid()}.tmp"
    tmp.write_text(plan.to_json())
    os.replace(tmp, folder / PLAN_NAME)


def plan_read(partial: Path) -> ReportPlan:
    return ReportPlan.from_json((partial / UNITS_DIR / PLAN_NAME).read_text())


@dataclass
class UnitResult:
    """What one unit measured: its rows, the cells read coarser than planned, the level each
    meshed cell was meshed at, seconds spent, and who measured it."""

    table: pd.DataFrame
    raised: dict[int, dict[int, int]] = field(default_factory=dict)
    mesh_levels: dict[int, int] = field(default_factory=dict)
    seconds_features: float = 0.0
    seconds_meshes: float = 0.0
    worker: str = ""


def unit_write(partial: Path, index: int, result: UnitResult) -> None:
    """Write unit ``index``'s result (rows as parquet, the rest in its metadata); the unit is done."""
    meta = {"raised": {str(c): {str(a): b for a, b in r.items()} for c, r in result.raised.items()},
            "mesh_levels": {str(c): lv for c, lv in result.mesh_levels.items()},
            "seconds_features": result.seconds_features, "seconds_meshes": result.seconds_meshes,
            "worker": result.worker or worker_name()}
    arrow = pa.Table.from_pandas(result.table)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    unit_claims(partial).done_write(index, lambda handle: pq.write_table(arrow, handle))


def unit_read(partial: Path, index: int) -> UnitResult:
    with open(unit_claims(partial).done_path(index), "rb") as handle:
        arrow = pq.read_table(io.BytesIO(handle.read()))
    meta = json.loads((arrow.schema.metadata or {})[_META_KEY])
    return UnitResult(table=arrow.to_pandas(),
                      raised={int(c): {int(a): int(b) for a, b in r.items()} for c, r in meta["raised"].items()},
                      mesh_levels={int(c): int(lv) for c, lv in meta["mesh_levels"].items()},
                      seconds_features=float(meta["seconds_features"]), seconds_meshes=float(meta["seconds_meshes"]),
                      worker=str(meta["worker"]))


def units_merge(parts: Sequence[UnitResult], columns: Iterable[str]) -> UnitResult:
    """The units' results as one, rows in unit order (cell id order); seconds are summed
    (CPU seconds of every task), the worker names joined."""
    names = list(columns)
    tables = [p.table for p in parts if len(p.table)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=names)
    raised: dict[int, dict[int, int]] = {}
    mesh_levels: dict[int, int] = {}
    for p in parts:
        raised.update(p.raised)
        mesh_levels.update(p.mesh_levels)
    workers = sorted({p.worker for p in parts})
    return UnitResult(table=table[names], raised=raised, mesh_levels=mesh_levels,
                      seconds_features=math.fsum(p.seconds_features for p in parts),
                      seconds_meshes=math.fsum(p.seconds_meshes for p in parts), worker=",".join(workers))


def units_done_cells(partial: Path, plan: ReportPlan) -> int:
    """Cells in the units that are done (the job's progress counts these)."""
    return sum(len(plan.units[i]) for i in unit_claims(partial).done(len(plan.units)))


def units_work(partial: Path, plan: ReportPlan, compute: Callable[[int], UnitResult], *,
               should_stop: Callable[[], bool], on_unit: Callable[[int], object] | None = None) -> int:
    """Measure every unit nobody else has claimed, in order, writing each result; returns how many.

    The report job's task and its helpers all run this, so the units spread over whoever is
    free. ``should_stop()`` is asked before each unit (cancel, or the job no longer running).
    """
    def work(index: int) -> None:
        unit_write(partial, index, compute(index))
        if on_unit is not None:
            on_unit(index)

    return unit_claims(partial).run(range(len(plan.units)), work, should_stop=should_stop)
