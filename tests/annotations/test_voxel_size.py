"""A manager corrects a volume's voxel size after import: files, record, audit, reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotations.imaging import omezarr
from annotations.models import Volume
from annotations.reviews.models import AuditEvent
from annotations.services import volume_set_voxel_size
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from tests.factories import make_volume

pytestmark = pytest.mark.django_db


def _scales(group: Path) -> list[list[float]]:
    ome, _, _ = omezarr._attrs(group)
    return [next(t["scale"] for t in ds["coordinateTransformations"] if t["type"] == "scale")
            for ds in ome["multiscales"][0]["datasets"]]


def test_the_new_voxel_size_reaches_the_image_every_label_layer_the_record_and_the_audit(
    cast: Any, tmp_path: Path
) -> None:
    volume = make_volume(cast.project, tmp_path, voxel_size_nm=(1.0, 1.0, 1.0))
    dest = volume_zarr_path(volume)
    omezarr.create_label_layer(dest, "cells", dtype="uint32")
    volume_set_voxel_size(volume, cast.manager, (40.0, 5.9, 5.9))

    volume.refresh_from_db()
    assert volume.voxel_size_nm == (40.0, 5.9, 5.9)
    assert omezarr.read_info(dest).voxel_size_nm == pytest.approx((40.0, 5.9, 5.9))
    for group in (dest, dest / "labels" / "manual", dest / "labels" / "cells"):
        scales = _scales(group)
        assert scales[0] == pytest.approx([40.0, 5.9, 5.9]) and scales[1] == pytest.approx([40.0, 11.8, 11.8])
    event = AuditEvent.objects.get(volume=volume, action="voxel_size_changed")
    assert event.detail == {"from": [1.0, 1.0, 1.0], "to": [40.0, 5.9, 5.9]} and event.actor == cast.manager


def test_the_latest_report_is_queued_again_with_its_own_parameters(cast: Any, tmp_path: Path,
                                                                    django_capture_on_commit_callbacks: Any) -> None:
    volume = make_volume(cast.project, tmp_path, voxel_size_nm=(1.0, 1.0, 1.0))
    omezarr.create_label_layer(volume_zarr_path(volume), "cells", dtype="uint32")
    volume.layers.create(name="cells", kind="instances")
    params = {"labels_layer": "manual", "cells_layer": "cells", "fenestration_closing_nm": 30.0, "meshes": False}
    done = Job.objects.create(kind=REPORT, project=cast.project, volume=volume, params=params,
                              state=Job.State.SUCCEEDED)
    FeatureReport.objects.create(volume=volume, job=done, labels_layer="manual", cells_layer="cells")

    with django_capture_on_commit_callbacks(execute=True):
        volume_set_voxel_size(volume, cast.manager, (4.0, 4.0, 4.0))

    queued = Job.objects.get(kind=REPORT, state=Job.State.QUEUED)
    assert queued.params == params and queued.created_by == cast.manager


@pytest.mark.parametrize("bad", [(0.0, 4.0, 4.0), (4.0, 4.0), (4.0, float("nan"), 4.0)])
def test_a_bad_voxel_size_is_refused_and_changes_nothing(cast: Any, tmp_path: Path, bad: tuple[float, ...]) -> None:
    volume = make_volume(cast.project, tmp_path)
    with pytest.raises(ApplicationError, match="voxel size must be three numbers"):
        volume_set_voxel_size(volume, cast.manager, bad)
    assert Volume.objects.get(pk=volume.pk).voxel_size_nm == (8.0, 4.0, 4.0)
    assert omezarr.read_info(volume_zarr_path(volume)).voxel_size_nm == pytest.approx((8.0, 4.0, 4.0))
    assert not AuditEvent.objects.filter(action="voxel_size_changed").exists()


def test_only_a_manager_may_change_it_over_the_api(cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    url = f"/api/volumes/{volume.pk}/voxel-size/"
    client = Client()
    client.force_login(cast.annotator)
    assert client.put(url, {"voxel_size_nm": [4, 4, 4]}, content_type="application/json").status_code == 403
    client.force_login(cast.manager)
    response = client.put(url, {"voxel_size_nm": [4, 4, 4]}, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"voxel_size_nm": [4.0, 4.0, 4.0]}
    assert Volume.objects.get(pk=volume.pk).voxel_size_nm == (4.0, 4.0, 4.0)


def test_a_volume_still_importing_is_refused_with_the_one_not_ready_code(cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    Volume.objects.filter(pk=volume.pk).update(state=Volume.State.IMPORTING)
    volume.refresh_from_db()
    with pytest.raises(ApplicationError) as refused:
        volume_set_voxel_size(volume, cast.manager, (4.0, 4.0, 4.0))
    assert refused.value.code == "volume_not_ready" and refused.value.status_code == 409
    client = Client()
    client.force_login(cast.viewer)
    response = client.get(f"/api/volumes/{volume.pk}/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "volume_not_ready"
