"""The cells job's work on a tiny phantom: keys from the cells layer, interior from the prediction."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_create
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_write_slices
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import job_running
from segmentation.cells import services as cells
from segmentation.models import ModelVersion, SegmentationRun
from tests.segmentation.phantom_volumes import KEYS, phantom_volume

pytestmark = pytest.mark.django_db
NO_QUEUE = {"enqueue": lambda job_id: None}


def _run(volume: Any, user: Any, **kwargs: Any) -> Job:
    job = cells.volume_cells(volume, user, **kwargs, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        cells.volume_cells_run(ctx)
    job.refresh_from_db()
    return job


def _fake_cell_prediction(pv: Any) -> None:
    """A prediction run whose model learned the cell class: cell interior = the phantom's cells."""
    classes = {c.name: c.value for c in pv.volume.project.label_classes.all()}
    model = ModelVersion.objects.create(project=pv.volume.project, volume=pv.volume, weights="models/none.pt",
                                        classes=classes, hierarchy={"nucleus": "cell", "nucleolus": "nucleus"},
                                        config={"interior_class": "cell"})
    layer_create(pv.volume, LayerName.PREDICTION, editable=False)
    pred = np.where(pv.phantom.cells > 0, classes["cell"], classes["background"]).astype(np.uint16)
    pred[(pv.phantom.cells > 0) & (pv.truth == classes["nucleus"])] = classes["nucleus"]
    layer_write_slices(pv.volume, LayerName.PREDICTION, {z: pred[z] for z in range(pred.shape[0])})
    SegmentationRun.objects.create(volume=pv.volume, model_version=model, layer=LayerName.PREDICTION)


def test_it_propagates_the_painted_cells_into_a_read_only_layer_and_lists_them(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True, truth_cells=True)
    job = _run(pv.volume, cast.annotator)
    assert job.state == Job.State.SUCCEEDED, job.message
    assert "no cell-interior prediction" in job.message and job.result["method"] == "flow"
    layer = pv.volume.layers.get(name=LayerName.CELLS_AUTO)
    assert not layer.editable and layer.kind == "instances" and layer.max_value == pv.phantom.cells.max()
    out = np.asarray(omezarr.open_label_level(volume_zarr_path(pv.volume), LayerName.CELLS_AUTO, 0)[:])
    for z in KEYS:
        assert np.array_equal(out[z], pv.phantom.cells[z])  # key slices kept as painted
    run = SegmentationRun.objects.get(layer=LayerName.CELLS_AUTO)
    table = {row["id"]: row for row in run.outputs["cells"]}
    ids = set(np.unique(out[out > 0]).tolist())
    assert set(table) == ids
    for cid, row in table.items():
        assert row["voxels"] == int((out == cid).sum()) and row["volume_um3"] == pytest.approx(row["voxels"] * 64e-9, rel=1e-5)
        zs = np.flatnonzero((out == cid).any(axis=(1, 2)))
        assert (row["z0"], row["z1"]) == (zs[0], zs[-1])
    dice = run.outputs["dice"]["flow"]
    assert set(dice["cells"]) == {str(c) for c in np.unique(pv.phantom.cells[pv.phantom.cells > 0])}
    assert dice["mean"] > 0.5


def test_fusion_takes_the_interior_from_a_prediction_with_a_cell_head_and_compares_methods(
        cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True, truth_cells=True)
    _fake_cell_prediction(pv)
    job = _run(pv.volume, cast.annotator, method="fusion", compare=True)
    assert job.state == Job.State.SUCCEEDED, job.message
    run = SegmentationRun.objects.get(layer=LayerName.CELLS_AUTO)
    assert run.outputs["method"] == "fusion" and run.outputs["interior_from"] is not None
    assert set(run.outputs["dice"]) == {"fusion", "flow", "interior"}
    # With the true interior the fusion is near perfect, and at least as good as flow alone.
    assert run.outputs["dice"]["fusion"]["mean"] > 0.9
    assert run.outputs["dice"]["fusion"]["mean"] >= run.outputs["dice"]["flow"]["mean"] - 1e-6


def test_it_refuses_to_start_without_painted_cells(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=())
    with pytest.raises(ApplicationError) as err:
        cells.volume_cells(pv.volume, cast.annotator, **NO_QUEUE)
    assert err.value.code == "no_keys"
    with pytest.raises(ApplicationError) as err:  # refused for its method, before the missing keys
        cells.volume_cells(pv.volume, cast.annotator, method="watershed", **NO_QUEUE)
    assert err.value.code == "invalid" and "method 'watershed'" in err.value.message


def test_interior_values_are_the_cell_class_and_everything_nested_in_it(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, labeled=())
    _fake_cell_prediction(pv)
    run = SegmentationRun.objects.get()
    values = {c.name: c.value for c in cast.project.label_classes.all()}
    assert cells.interior_values(run) == sorted([values["cell"], values["nucleus"], values["nucleolus"]])
    run.model_version.config = {}
    assert cells.interior_values(run) == []


def test_the_cells_layer_version_is_bumped_before_every_slab_it_writes(
        cast: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from annotations.models import LabelLayer

    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    layer_create(pv.volume, LayerName.CELLS_AUTO, kind="instances", editable=False)
    before = LabelLayer.objects.get(volume=pv.volume, name=LayerName.CELLS_AUTO).version
    monkeypatch.setattr(cells, "SLAB", 4)  # three slabs of the 12 slices
    seen: list[int] = []
    real = omezarr.update_label_pyramid

    def record(dest: Any, name: str, **kwargs: Any) -> None:
        real(dest, name, **kwargs)
        if name == LayerName.CELLS_AUTO:  # the slab is in level 0 and the pyramid: what version covers it?
            seen.append(LabelLayer.objects.get(volume=pv.volume, name=name).version)

    monkeypatch.setattr(omezarr, "update_label_pyramid", record)
    job = _run(pv.volume, cast.annotator, method="flow")
    assert job.state == Job.State.SUCCEEDED, job.message
    assert len(seen) == 3 and before < seen[0] < seen[1] < seen[2] < job.result["version"]


def test_a_cells_job_that_dies_after_a_slab_leaves_the_layer_partial_and_its_tiles_stale(
        cast: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from django.test import Client

    from annotations.models import LabelLayer

    pv = phantom_volume(cast.project, tmp_path, labeled=(), cells=True)
    first = _run(pv.volume, cast.annotator, method="flow")
    client = Client()
    client.force_login(cast.viewer)
    assert client.get(f"/api/volumes/{pv.volume.pk}/cells/").json()["layer_state"]["state"] == "complete"
    version = LabelLayer.objects.get(volume=pv.volume, name=LayerName.CELLS_AUTO).version
    real = omezarr.update_label_pyramid

    def dies(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("worker lost")

    monkeypatch.setattr(omezarr, "update_label_pyramid", dies)
    failed = _run(pv.volume, cast.annotator, method="flow")
    assert failed.state == Job.State.FAILED
    shown = client.get(f"/api/volumes/{pv.volume.pk}/cells/").json()
    assert shown["id"] == first.result["run"]
    assert shown["layer_state"]["state"] == "partial" and shown["layer_state"]["job"] == failed.pk
    assert LabelLayer.objects.get(volume=pv.volume, name=LayerName.CELLS_AUTO).version > version

    monkeypatch.setattr(omezarr, "update_label_pyramid", real)
    again = _run(pv.volume, cast.annotator, method="flow")
    assert client.get(f"/api/volumes/{pv.volume.pk}/cells/").json()["layer_state"]["state"] == "complete"
    assert again.state == Job.State.SUCCEEDED
