"""Pretrain: a project's encoder learned from its volumes' images alone, reused by Retrain from scratch."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from django.test import Client

from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobBusy, job_running
from segmentation.core.encoder import load_encoder
from segmentation.core.modelfile import load_model
from segmentation.modelloop import pretrain, retrain
from segmentation.modelloop.storage import model_weights_path, pretrain_encoder_path
from segmentation.models import ModelVersion
from tests.segmentation.phantom_volumes import TINY, phantom_volume

pytestmark = pytest.mark.django_db
torch.set_num_threads(1)

NO_QUEUE = {"enqueue": lambda job_id: None}


def _pretrain(project: Any, user: Any, **kwargs: Any) -> Job:
    job = pretrain.encoder_pretrain(project, user, minutes=0.5, max_steps=3, config=kwargs.pop("config", TINY),
                                    **kwargs, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        pretrain.encoder_pretrain_run(ctx)
    job.refresh_from_db()
    return job


def _retrain(volume: Any, user: Any, **kwargs: Any) -> ModelVersion:
    job = retrain.model_retrain(volume, user, minutes=0.5, max_steps=2, config=kwargs.pop("config", TINY), **kwargs,
                                **NO_QUEUE)
    with job_running(job.pk) as ctx:
        retrain.model_retrain_run(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.message
    return ModelVersion.objects.get(job_id=job.pk)


def test_it_pretrains_on_every_volume_without_a_label_layer_and_retrain_from_scratch_starts_from_it(
        cast: Any, tmp_path: Path, settings: Any) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    volumes = [phantom_volume(cast.project, tmp_path / name, name=name).volume for name in ("a", "b")]
    # No label layer exists while the job runs: it cannot read one.
    hidden = {v.pk: tmp_path / f"labels-of-{v.pk}" for v in volumes}
    for v in volumes:
        shutil.move(volume_zarr_path(v) / "labels", hidden[v.pk])
    job = _pretrain(cast.project, cast.annotator)
    for v in volumes:
        shutil.move(hidden[v.pk], volume_zarr_path(v) / "labels")
    assert job.state == Job.State.SUCCEEDED, job.message
    assert job.volume_id is None and job.result["volumes"] == [v.pk for v in volumes]
    encoder = load_encoder(pretrain_encoder_path(job))
    assert job.result["encoder"] == f"models/encoder-job-{job.pk}.pt" and encoder.meta["steps"] == 3
    assert [s["name"] for s in encoder.meta["sources"]] == [f"volume {v.pk}" for v in volumes]

    scratch = _retrain(volumes[0], cast.annotator, from_scratch=True, pretrained=True)
    assert scratch.config["encoder"]["job"] == job.pk and "skipped" not in scratch.config["encoder"]
    meta = load_model(model_weights_path(scratch)).meta
    assert meta["encoder"]["job"] == job.pk and meta["encoder"]["file"] == str(pretrain_encoder_path(job))

    tuned = _retrain(volumes[0], cast.annotator, pretrained=True)  # fine-tunes the active version
    assert tuned.parent_id == scratch.pk and tuned.config["encoder"] is None
    plain = _retrain(volumes[0], cast.annotator, from_scratch=True, pretrained=False)
    assert plain.config["encoder"] is None and load_model(model_weights_path(plain)).meta["encoder"] is None


def test_retrain_records_why_it_left_out_an_encoder_of_another_network(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    job = _pretrain(cast.project, cast.annotator)
    model = _retrain(pv.volume, cast.annotator, from_scratch=True, pretrained=True, config={**TINY, "base_width": 4})
    assert model.config["encoder"]["job"] == job.pk and "width" in model.config["encoder"]["skipped"]
    assert load_model(model_weights_path(model)).meta["encoder"] is None


def test_one_pretrain_runs_per_project_and_only_on_ready_volumes(cast: Any, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as refused:
        pretrain.encoder_pretrain(cast.project, cast.annotator, **NO_QUEUE)
    assert refused.value.code == "volume_not_ready"
    phantom_volume(cast.project, tmp_path)
    first = pretrain.encoder_pretrain(cast.project, cast.annotator, **NO_QUEUE)
    with pytest.raises(JobBusy):
        pretrain.encoder_pretrain(cast.project, cast.annotator, **NO_QUEUE)
    assert list(Job.objects.filter(kind="pretrain").values_list("pk", flat=True)) == [first.pk]


def test_a_failed_pretrain_leaves_no_encoder_file(cast: Any, tmp_path: Path) -> None:
    phantom_volume(cast.project, tmp_path)
    job = pretrain.encoder_pretrain(cast.project, cast.annotator, **NO_QUEUE)
    path = pretrain_encoder_path(job)
    path.write_bytes(b"half written")
    path.with_name(path.name + ".tmp").write_bytes(b"")
    Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED)
    assert set(pretrain.pretrain_leftovers_remove(job)) == {path, path.with_name(path.name + ".tmp")}
    assert not path.exists()


def test_annotators_start_a_pretrain_and_viewers_may_not(cast: Any, tmp_path: Path) -> None:
    phantom_volume(cast.project, tmp_path)
    url = f"/api/projects/{cast.project.pk}/pretrain/"
    viewer, annotator = Client(), Client()
    viewer.force_login(cast.viewer)
    annotator.force_login(cast.annotator)
    assert viewer.post(url, {"minutes": 1}, content_type="application/json").status_code == 403
    bad = annotator.post(url, {"minutes": 1, "config": {"colour": 3}}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    response = annotator.post(url, {"minutes": 1}, content_type="application/json")
    assert response.status_code == 202 and response.json()["kind"] == "pretrain"
    job = Job.objects.get(kind="pretrain")
    assert job.project_id == cast.project.pk and job.params["minutes"] == 1.0 and job.created_by == cast.annotator
