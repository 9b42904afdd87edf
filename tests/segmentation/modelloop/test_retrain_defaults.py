"""Retrain in the app trains with the defaults for the volume's voxel size and records them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from annotations.models import Volume
from emportal.jobs.services import job_running
from segmentation.core.defaults import training_defaults
from segmentation.core.modelfile import load_model, prediction_tta
from segmentation.modelloop import retrain
from segmentation.models import ModelVersion
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = pytest.mark.django_db
torch.set_num_threads(1)

SMALL = {"base_width": 8, "depth": 3}  # network size only: scale, patch, batch and slices are left to the defaults


def _first_model(volume: Any, user: Any, voxel_nm: tuple[float, float, float], **config: int) -> ModelVersion:
    Volume.objects.filter(pk=volume.pk).update(voxel_z_nm=voxel_nm[0], voxel_y_nm=voxel_nm[1], voxel_x_nm=voxel_nm[2])
    volume.refresh_from_db()
    job = retrain.model_retrain(volume, user, minutes=0.5, config={**SMALL, **config}, max_steps=1, from_scratch=True,
                                 enqueue=lambda job_id: None)
    with job_running(job.pk) as ctx:
        retrain.model_retrain_run(ctx)
    return ModelVersion.objects.get(job_id=job.pk)


def test_retrain_trains_with_the_defaults_for_the_voxel_size_and_records_them(cast: Any, tmp_path: Path, settings: Any) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    sections = _first_model(pv.volume, cast.annotator, (40.0, 5.9, 5.9))
    expected = training_defaults((40.0, 5.9, 5.9), "cpu")
    model = load_model(Path(settings.MEDIA_ROOT) / sections.weights)
    assert (model.scale, model.config.in_slices, model.meta["patch"], model.meta["batch"]) == (2, 1, 96, 4)
    assert prediction_tta(model) and model.meta["defaults"] == expected.to_dict() and model.meta["overrides"] == SMALL
    assert sections.config["scale"] == 2 and sections.config["patch"] == 96 and sections.config["tta"] is True
    assert sections.config["defaults"]["reason"] == expected.reason and sections.config["in_slices"] == 1

    isotropic = _first_model(pv.volume, cast.annotator, (4.0, 4.0, 4.0))
    assert (isotropic.config["scale"], isotropic.config["in_slices"], isotropic.config["patch"]) == (1, 5, 160)

    asked = _first_model(pv.volume, cast.annotator, (40.0, 5.9, 5.9), scale=1, patch=48)  # a request's settings win
    assert (asked.config["scale"], asked.config["patch"], asked.config["defaults"]["scale"]) == (1, 48, 2)
