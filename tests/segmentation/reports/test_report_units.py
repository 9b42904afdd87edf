"""A report's cells measured in units: the same report whatever the units and whoever measures
them, a dead worker's unit taken over, a cancel that stops the units, no unit files left."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings as django_settings

from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from emportal.jobs.services import job_cancel, job_running
from segmentation.core.features import intensity_range_of
from segmentation.core.features.pyramid import cell_features_pyramid
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports import services, units
from segmentation.reports.services import CELL_BOX_MAX_VOXELS, report_compute, report_create, report_dir
from tests.conftest import running_celery_worker

STALE_S = 3


def _files(report: FeatureReport) -> dict[str, bytes]:
    """Every file of a report but the xlsx (whose zip entries carry the time they were written)."""
    root = report_dir(report)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".xlsx"}


def _table(report: FeatureReport) -> pd.DataFrame:
    return pd.read_parquet(Path(django_settings.MEDIA_ROOT) / report.files["parquet"])


def _same_report(a: FeatureReport, b: FeatureReport) -> None:
    pd.testing.assert_frame_equal(_table(a), _table(b))
    assert _files(a) == _files(b)  # csv, parquet and every mesh, byte for byte
    pd.testing.assert_frame_equal(pd.read_excel(Path(django_settings.MEDIA_ROOT) / a.files["xlsx"]),
                                  pd.read_excel(Path(django_settings.MEDIA_ROOT) / b.files["xlsx"]))
    keep = lambda s: {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
    assert keep(a.summary) == keep(b.summary)
    assert (a.n_cells, a.classes) == (b.n_cells, b.classes)


def test_units_are_consecutive_cells_in_id_order_up_to_the_unit_size() -> None:
    assert units.units_split({3: 40, 1: 50, 2: 60, 7: 10}, 100) == [[1], [2, 3], [7]]
    assert units.units_split({1: 500, 2: 1}, 100) == [[1], [2]]  # a cell larger than a unit is its own
    assert units.units_split({1: 5, 2: 5, 3: 5}, 1) == [[1], [2], [3]]
    assert units.units_split({1: 5, 2: 5, 3: 5}, 10**9) == [[1, 2, 3]]


@pytest.mark.django_db
def test_a_report_in_one_unit_per_cell_equals_one_unit_and_the_cores_table(
        phantom_volume: Any, settings: Any) -> None:
    one = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")
    settings.REPORT_UNIT_VOXELS = 1  # every cell its own unit
    per_cell = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")
    assert per_cell.n_cells == phantom_volume.phantom.cells.max() > 2
    _same_report(one, per_cell)
    dest = volume_zarr_path(phantom_volume)
    image, labels, cells = services._pyramids(dest, "truth", "cells_truth")
    whole = cell_features_pyramid(image, labels, cells, voxel_size_nm=services._voxel(phantom_volume),
                                  classes=dict(one.classes), fenestration_closing_nm=0.0,
                                  intensity_range=intensity_range_of(image[0]), max_box_voxels=CELL_BOX_MAX_VOXELS)
    pd.testing.assert_frame_equal(_table(per_cell), whole.table)  # one table over every cell, as before units
    assert not list((Path(django_settings.MEDIA_ROOT) / "reports").glob(".partial-*"))
    assert not (report_dir(per_cell) / units.UNITS_DIR).exists()


@pytest.mark.django_db
def test_a_cancel_stops_the_units_and_leaves_no_report_nor_files(
        phantom_volume: Any, settings: Any, monkeypatch: Any) -> None:
    settings.REPORT_UNIT_VOXELS = 1
    job = report_create(phantom_volume, None, labels_layer="truth", cells_layer="cells_truth",
                        enqueue=lambda job_id: None)
    measured: list[int] = []
    real_write = units.unit_write

    def write_then_cancel(partial: Path, index: int, result: Any) -> None:
        real_write(partial, index, result)
        measured.append(index)
        job_cancel(Job.objects.get(pk=job.pk))  # pressed while unit 0 was being measured

    monkeypatch.setattr(units, "unit_write", write_then_cancel)
    with job_running(job.pk) as ctx:
        services.report_run(ctx, helpers=0)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert measured == [0]  # no unit after the cancel
    assert not FeatureReport.objects.filter(job=job).exists()
    assert not list((Path(django_settings.MEDIA_ROOT) / "reports").glob(".partial-*"))


@pytest.mark.django_db
def test_the_reapers_cleanup_removes_a_dead_jobs_unit_files(phantom_volume: Any) -> None:
    job = report_create(phantom_volume, None, labels_layer="truth", cells_layer="cells_truth",
                        enqueue=lambda job_id: None)
    partial = Path(django_settings.MEDIA_ROOT) / "reports" / f"{units.partial_prefix(job.pk)}abcd1234"
    (partial / units.UNITS_DIR).mkdir(parents=True)
    for name in (units.PLAN_NAME, "unit-0.claim", "unit-0.parquet", ".unit-1.parquet.7.tmp"):
        (partial / units.UNITS_DIR / name).write_text("x")
    assert units.partial_find(job.pk) == partial
    assert services.report_leftovers_remove(job) == [partial]
    assert not partial.exists() and units.partial_find(job.pk) is None


@pytest.fixture
def two_workers(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[Any]:
    """A Celery worker with two processes on both queues; unit claims go stale after 3 s."""
    settings.REPORT_UNIT_STALE_SECONDS = STALE_S
    with running_celery_worker(settings, tmp_path, processes=2, name="units", wait_s=90,
                               env={"EMPORTAL_REPORT_UNIT_STALE_SECONDS": str(STALE_S)}) as proc:
        yield proc


@pytest.mark.services
@pytest.mark.slow
def test_units_on_a_two_process_worker_give_the_report_of_one_worker_and_a_dead_workers_unit_is_taken_over(
        phantom_volume: Any, settings: Any, monkeypatch: Any, two_workers: Any) -> None:
    alone = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")

    settings.REPORT_UNIT_VOXELS = 1
    real_plan_write, real_read = units.plan_write, services.unit_read
    who: dict[int, str] = {}

    def plan_then_dead_claim(partial: Path, plan: Any) -> None:
        real_plan_write(partial, plan)
        claim = units.unit_claims(partial).claim_path(1)  # unit 1 was claimed by a worker that died in it
        claim.write_text("dead-host:1")
        old = time.time() - 10 * STALE_S
        os.utime(claim, (old, old))

    def read(partial: Path, index: int) -> Any:
        result = real_read(partial, index)
        who[index] = result.worker
        return result

    monkeypatch.setattr(services, "plan_write", plan_then_dead_claim)
    monkeypatch.setattr(services, "unit_read", read)
    spread = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth", helpers=2)
    _same_report(alone, spread)
    assert len(who) == spread.n_cells and not any(w.startswith("dead-host") for w in who.values())
    here = f":{os.getpid()}"
    assert any(not w.endswith(here) for w in who.values())  # the worker's processes measured units too
    assert Job.objects.filter(kind=REPORT, state=Job.State.SUCCEEDED).count() == 2
