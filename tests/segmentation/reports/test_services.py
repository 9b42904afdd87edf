"""The report job through its service: truth layers, the measured table, files, meshes, failures."""
from __future__ import annotations

import typing  # typing.cast: `cast` here is the fixture of roles
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import trimesh
from django.conf import settings

from annotations.imaging import omezarr
from annotations.layers import layer_create
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from segmentation.core.features import cell_features
from segmentation.core.phantom import CLASS_VALUES
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports.services import phantom_truth_write, report_compute, report_create, report_dir
from tests.factories import make_volume

pytestmark = pytest.mark.django_db


def _layer(volume: Any, name: str) -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), name, 0)[:])


def test_it_writes_the_phantom_truth_into_read_only_layers_in_project_values(phantom_volume: Any) -> None:
    phantom = phantom_volume.phantom
    values = {c.name: c.value for c in phantom_volume.project.label_classes.all()}
    truth, cells = _layer(phantom_volume, "truth"), _layer(phantom_volume, "cells_truth")
    for name, phantom_value in CLASS_VALUES.items():
        assert np.array_equal(truth == values[name], phantom.labels == phantom_value), name
    assert np.array_equal(truth == values["background"], phantom.labels == 0)
    assert np.array_equal(cells, phantom.cells)
    layers = {layer.name: layer for layer in phantom_volume.layers.all()}
    assert not layers["truth"].editable and not layers["cells_truth"].editable
    assert layers["cells_truth"].kind == "instances" and layers["cells_truth"].max_value == phantom.cells.max()
    versions = (layers["truth"].version, layers["cells_truth"].version)
    phantom_truth_write(phantom_volume)
    assert tuple(phantom_volume.layers.get(name=n).version for n in ("truth", "cells_truth")) == versions


def test_it_refuses_to_write_phantom_truth_onto_another_volume(cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.full((16, 96, 96), 7, np.uint8), name="grey")
    with pytest.raises(ValueError, match="is not the phantom"):
        phantom_truth_write(volume)
    assert not volume.layers.filter(name="truth").exists()


def test_a_report_run_through_the_service_measures_what_the_core_measures_on_the_truth(
        phantom_volume: Any) -> None:
    phantom = phantom_volume.phantom
    report = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")

    expected = cell_features(phantom.image, phantom.labels, phantom.cells, voxel_size_nm=phantom.voxel_size_nm,
                             classes=CLASS_VALUES)
    got = pd.read_parquet(Path(settings.MEDIA_ROOT) / report.files["parquet"])
    assert report.n_cells == len(expected) == len(np.unique(phantom.cells)) - 1
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    for fmt in ("csv", "xlsx", "parquet"):
        assert (Path(settings.MEDIA_ROOT) / report.files[fmt]).is_file()
    assert report_dir(report).parent == Path(settings.MEDIA_ROOT) / "reports"
    assert report.classes == {c.name: c.value for c in phantom_volume.project.label_classes.all()
                              if c.name in CLASS_VALUES}
    assert report.summary["hierarchy"] == {"nucleolus": "nucleus"}

    assert report.job_id is not None
    job = Job.objects.get(pk=report.job_id)
    assert (job.state, job.kind, job.result) == (Job.State.SUCCEEDED, REPORT,
                                                {"report": report.pk, "n_cells": report.n_cells})
    # Every cell got a GLB whose nodes are the cell and the classes inside it.
    assert sorted(report.summary["mesh_cells"]) == sorted(expected["cell_id"].tolist())
    cid = int(expected.loc[expected["nucleus_count"] > 0, "cell_id"].iloc[0])
    scene = typing.cast(trimesh.Scene, trimesh.load(report_dir(report) / "meshes" / f"cell_{cid}.glb", file_type="glb", force="scene"))
    assert {"cell", "nucleus"} <= set(scene.geometry)
    nucleus_nm3 = float(expected.loc[expected["cell_id"] == cid, "nucleus_volume_um3"].iloc[0]) * 1e9
    assert scene.geometry["nucleus"].volume == pytest.approx(nucleus_nm3, rel=0.15)


def test_a_report_without_cells_fails_with_the_reason_and_leaves_no_row_or_files(phantom_volume: Any) -> None:
    layer_create(phantom_volume, "cells", kind="instances")
    with pytest.raises(ApplicationError, match="holds no cells"):
        report_compute(phantom_volume, labels_layer="truth", cells_layer="cells")
    job = Job.objects.get(kind=REPORT)
    assert job.state == Job.State.FAILED and "holds no cells" in job.message
    assert FeatureReport.objects.count() == 0
    reports = Path(settings.MEDIA_ROOT) / "reports"
    assert not reports.exists() or list(reports.iterdir()) == []


def test_it_refuses_a_cells_layer_that_holds_classes(phantom_volume: Any, cast: Any) -> None:
    with pytest.raises(ApplicationError, match="a report needs instances") as caught:
        report_create(phantom_volume, cast.annotator, labels_layer="truth", cells_layer="truth",
                      enqueue=lambda job_id: None)
    assert caught.value.code == "wrong_layer_kind"
    assert not Job.objects.filter(kind=REPORT).exists()


def test_a_second_request_while_one_is_queued_gets_the_same_job(phantom_volume: Any, cast: Any) -> None:
    queued: list[int] = []
    first = report_create(phantom_volume, cast.annotator, labels_layer="truth", cells_layer="cells_truth",
                          enqueue=queued.append)
    again = report_create(phantom_volume, cast.annotator, labels_layer="truth", cells_layer="cells_truth",
                          enqueue=queued.append)
    other = report_create(phantom_volume, cast.annotator, labels_layer="truth", cells_layer="cells_truth",
                          fenestration_closing_nm=12.0, enqueue=queued.append)
    assert again.pk == first.pk and other.pk != first.pk
    assert Job.objects.filter(kind=REPORT).count() == 2
