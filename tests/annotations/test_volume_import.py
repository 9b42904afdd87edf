"""Importing volumes: every format lands as a ready OME-Zarr; bad input fails cleanly."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotations.imaging import omezarr
from annotations.models import Volume
from annotations.services import volume_import_from_path, volume_import_local
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError
from segmentation.models import Job
from tests.factories import gradient_volume

pytestmark = pytest.mark.django_db

DATA = gradient_volume((3, 40, 60))


def _tiff(path: Path) -> Path:
    tifffile.imwrite(path / "stack.tif", DATA, photometric="minisblack")
    return path / "stack.tif"


def _tiff_folder(path: Path) -> Path:
    folder = path / "slices"
    folder.mkdir()
    for z in range(DATA.shape[0]):
        tifffile.imwrite(folder / f"s_{z + 1}.tif", DATA[z])
    return folder


def _hdf5(path: Path) -> Path:
    with h5py.File(path / "v.h5", "w") as f:
        f["raw"] = DATA
    return path / "v.h5"


def _mrc(path: Path) -> Path:
    with mrcfile.new(path / "v.mrc") as mrc:
        mrc.set_data(DATA)
        mrc.voxel_size = 40.0  # Å
    return path / "v.mrc"


@pytest.mark.parametrize("make", [_tiff, _tiff_folder, _hdf5, _mrc])
def test_each_format_imports_to_a_ready_pyramid(cast: Any, tmp_path: Path, make: Any) -> None:
    job = volume_import_local(cast.project, make(tmp_path), voxel_size_nm=None)
    assert job.state == Job.State.SUCCEEDED, job.message
    volume = Volume.objects.get(pk=job.volume_id)
    assert volume.state == Volume.State.READY and volume.shape == DATA.shape
    np.testing.assert_array_equal(omezarr.open_level(volume_zarr_path(volume), 0)[:], DATA)
    assert volume.layers.filter(name="manual").exists()


def test_voxel_size_comes_from_the_file_when_it_says(cast: Any, tmp_path: Path) -> None:
    job = volume_import_local(cast.project, _mrc(tmp_path))
    assert Volume.objects.get(pk=job.volume_id).voxel_size_nm == pytest.approx((4.0, 4.0, 4.0))


def test_a_corrupt_file_fails_the_job_and_leaves_no_volume(cast: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(_tiff(tmp_path).read_bytes()[:300])
    job = volume_import_local(cast.project, bad)
    assert job.state == Job.State.FAILED and job.message
    volume = Volume.objects.get(pk=job.volume_id)
    assert volume.state == Volume.State.FAILED
    assert not volume_zarr_path(volume).exists()
    client = Client()
    client.force_login(cast.viewer)
    assert client.get(f"/api/projects/{cast.project.pk}/volumes/").json() == []
    assert client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png").status_code == 404


@pytest.mark.parametrize("user_path", ["../etc/passwd", "/etc/passwd", "escape"])
def test_server_side_paths_outside_the_data_root_are_refused(cast: Any, tmp_path: Path, settings: Any,
                                                             user_path: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(_tiff(tmp_path))
    settings.DATA_ROOT = root
    with pytest.raises(ApplicationError):
        volume_import_from_path(cast.project, user_path, user=cast.annotator)
    assert not Job.objects.exists()


def test_the_path_import_api_queues_a_job_for_a_file_inside_the_root(cast: Any, tmp_path: Path,
                                                                     settings: Any) -> None:
    settings.DATA_ROOT = tmp_path
    _tiff(tmp_path)
    client = Client()
    client.force_login(cast.annotator)
    # Not committed inside the test transaction, so nothing is sent to Celery here;
    # tests/test_services_integration.py runs the same through a real worker.
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/", {"path": "stack.tif"},
                           content_type="application/json")
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).state == Job.State.QUEUED


def test_an_upload_of_an_unsupported_type_is_refused_before_anything_is_stored(cast: Any) -> None:
    client = Client()
    client.force_login(cast.annotator)
    upload = SimpleUploadedFile("page.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/", {"file": upload})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_format"
    assert not Volume.objects.exists()
