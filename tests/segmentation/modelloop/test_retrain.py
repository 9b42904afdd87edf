"""Retrain services on a tiny phantom volume (segment: test_segment.py)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_running
from segmentation.core.modelfile import load_model
from segmentation.modelloop import retrain
from segmentation.modelloop.labels import training_classes, training_labels_for
from segmentation.modelloop.selectors import models_compare
from segmentation.modelloop.storage import retrain_weights_path
from segmentation.models import ModelVersion
from tests.segmentation.phantom_volumes import LABELED, TINY, phantom_volume

pytestmark = pytest.mark.django_db
torch.set_num_threads(1)

NO_QUEUE = {"enqueue": lambda job_id: None}


def _retrain(volume: Any, user: Any, **kwargs: Any) -> Job:
    job = retrain.model_retrain(volume, user, minutes=kwargs.pop("minutes", 0.5), config=TINY,
                                 max_steps=kwargs.pop("max_steps", 4), **kwargs, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        retrain.model_retrain_run(ctx)
    job.refresh_from_db()
    return job


@pytest.fixture
def pv(cast: Any, tmp_path: Path) -> Any:
    return phantom_volume(cast.project, tmp_path)


def test_it_trains_a_first_model_stores_its_weights_and_makes_it_active(cast: Any, pv: Any, settings: Any) -> None:
    job = _retrain(pv.volume, cast.annotator)
    assert job.state == Job.State.SUCCEEDED, job.message
    model = ModelVersion.objects.get()
    assert model.active and model.parent is None and model.job_id == job.pk
    assert (Path(settings.MEDIA_ROOT) / model.weights).is_file() and model.weights == f"models/job-{job.pk}.pt"
    assert set(model.classes) >= {"background", "nucleus", "mitochondrion"} and "cell" not in model.classes
    assert model.hierarchy["nucleolus"] == "nucleus" and model.hierarchy["nucleus"] is None
    assert len(model.labels_hash) == 64 and model.labeled_voxels == len(LABELED) * 96 * 96
    assert model.curve and model.config["steps"] == 4 and model.created_by == cast.annotator
    assert job.result["model_version"] == model.pk and job.result["phase"] == "done"
    meta = load_model(Path(settings.MEDIA_ROOT) / model.weights).meta
    assert model.config["thresholds"] == meta["thresholds"] and model.config["z_blend"] == meta["z_blend"]


def test_a_first_model_sees_neighbouring_slices_only_where_voxels_are_near_isotropic(
        cast: Any, pv: Any, settings: Any) -> None:
    from annotations.models import Volume

    def first_model_in_slices(voxel_z_nm: float) -> int:
        Volume.objects.filter(pk=pv.volume.pk).update(voxel_z_nm=voxel_z_nm, voxel_y_nm=5.0, voxel_x_nm=5.0)
        pv.volume.refresh_from_db()
        job = _retrain(pv.volume, cast.annotator, from_scratch=True)
        return load_model(Path(settings.MEDIA_ROOT) / ModelVersion.objects.get(job_id=job.pk).weights).config.in_slices

    assert first_model_in_slices(5.0) == 5  # FIB-SEM
    assert first_model_in_slices(40.0) == 1  # serial sections
    asked = retrain.model_retrain(pv.volume, cast.annotator, minutes=0.5, config={**TINY, "in_slices": 3},
                                   max_steps=2, from_scratch=True, **NO_QUEUE)
    with job_running(asked.pk) as ctx:
        retrain.model_retrain_run(ctx)
    assert load_model(Path(settings.MEDIA_ROOT) / ModelVersion.objects.get(job_id=asked.pk).weights).config.in_slices == 3


def test_a_retrain_fine_tunes_the_active_version_and_records_it_as_parent(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    first = ModelVersion.objects.get()
    job = _retrain(pv.volume, cast.annotator)
    second = ModelVersion.objects.exclude(pk=first.pk).get()
    first.refresh_from_db()
    assert job.params["parent"] == first.pk and second.parent_id == first.pk
    assert second.active and not first.active
    assert second.labels_hash == first.labels_hash  # same labels, same hash
    # a first model keeps its best weights on validation; a fine-tune its last (no gate)
    assert first.config["select_best"] is True and second.config["select_best"] is False
    scratch = _retrain(pv.volume, cast.annotator, from_scratch=True)
    assert ModelVersion.objects.get(job_id=scratch.pk).parent is None


def test_the_labels_hash_changes_when_the_labels_do(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    from annotations.strokes import layer_write_slices

    layer_write_slices(pv.volume, LayerName.MANUAL, {4: pv.truth[4]})
    _retrain(pv.volume, cast.annotator)
    hashes = set(ModelVersion.objects.values_list("labels_hash", flat=True))
    assert len(hashes) == 2


def test_training_labels_name_only_slices_inside_written_chunks_as_candidates(cast: Any, pv: Any) -> None:
    labels, *_ = training_labels_for(pv.volume)
    depth = omezarr.open_label_level(volume_zarr_path(pv.volume), LayerName.MANUAL, 0).chunks[0]
    expected = {z for painted in LABELED for z in range(painted // depth * depth, (painted // depth + 1) * depth)}
    assert labels.candidate_slices() == expected


def test_a_cancelled_retrain_leaves_the_previous_version_active(cast: Any, pv: Any, monkeypatch: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    first = ModelVersion.objects.get()
    started = time.monotonic()
    # Cancel arrives 1.5 s into an open-ended run (no step cap, one-minute budget).
    monkeypatch.setattr(JobContext, "cancel_requested", lambda self: time.monotonic() - started > 1.5)
    job = retrain.model_retrain(pv.volume, cast.annotator, minutes=1.0, config=TINY, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        retrain.model_retrain_run(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert time.monotonic() - started < 30
    assert list(ModelVersion.objects.values_list("pk", "active")) == [(first.pk, True)]


def test_a_retrain_with_painted_cells_learns_the_cell_class(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, cells=True)
    values, parents, cell = training_classes(pv.volume, with_cells=True)
    assert cell == "cell" and values["cell"] == 7 and parents["nucleus"] == "cell"
    _retrain(pv.volume, cast.annotator)
    model = ModelVersion.objects.get()
    assert model.config["interior_class"] == "cell" and "cell" in model.classes


def test_it_refuses_a_second_retrain_while_one_is_queued(cast: Any, pv: Any) -> None:
    retrain.model_retrain(pv.volume, cast.annotator, minutes=1, **NO_QUEUE)
    with pytest.raises(ApplicationError) as err:
        retrain.model_retrain(pv.volume, cast.annotator, minutes=1, **NO_QUEUE)
    assert err.value.status_code == 409 and err.value.code == "job_running"


@pytest.mark.parametrize("bad", [{"minutes": 0}, {"minutes": 1e6}, {"config": {"depth": 99}},
                                 {"config": {"lr": 1}}, {"max_steps": 0}])
def test_it_refuses_bad_training_parameters(cast: Any, pv: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError):
        retrain.model_retrain(pv.volume, cast.annotator, **{"minutes": 1, **bad}, **NO_QUEUE)


def test_a_retrain_whose_version_row_fails_deletes_the_weights_it_wrote(
        cast: Any, pv: Any, settings: Any, monkeypatch: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    first = ModelVersion.objects.get()
    written: list[Path] = []

    def fail(job: Job, *args: Any, **kwargs: Any) -> None:
        written.append(retrain_weights_path(job))
        assert written[-1].is_file()  # the weights were saved before the row
        raise RuntimeError("database went away")

    monkeypatch.setattr(retrain, "_model_version_create", fail)
    job = _retrain(pv.volume, cast.annotator)
    assert job.state == Job.State.FAILED and "database went away" in job.message
    assert written and not written[0].exists()
    assert sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "models").iterdir()) == [Path(first.weights).name]
    assert list(ModelVersion.objects.values_list("pk", "active")) == [(first.pk, True)]


def test_activating_an_earlier_version_makes_it_the_only_active_one(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    _retrain(pv.volume, cast.annotator)
    first, second = ModelVersion.objects.order_by("pk")
    retrain.model_activate(first, cast.annotator)
    assert list(ModelVersion.objects.filter(active=True)) == [first]
    compared = models_compare(first, second)
    assert compared["same_labels"] and set(compared["delta"]) == set(compared["classes"])
