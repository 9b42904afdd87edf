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
from annotations.storage import upload_dir, volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from tests.factories import gradient_volume, volume_of

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
    job = volume_import_local(cast.project, make(tmp_path), voxel_size_nm=(10.0, 4.0, 4.0))
    assert job.state == Job.State.SUCCEEDED, job.message
    volume = volume_of(job)
    assert volume.state == Volume.State.READY and volume.shape == DATA.shape
    np.testing.assert_array_equal(omezarr.open_level(volume_zarr_path(volume), 0)[:], DATA)
    assert volume.layers.filter(name="manual").exists()


def test_voxel_size_comes_from_the_file_when_it_says(cast: Any, tmp_path: Path) -> None:
    job = volume_import_local(cast.project, _mrc(tmp_path))
    assert volume_of(job).voxel_size_nm == pytest.approx((4.0, 4.0, 4.0))


@pytest.mark.parametrize("make", [_tiff, _tiff_folder, _hdf5])
def test_a_file_that_states_no_voxel_size_is_refused_without_one_instead_of_becoming_1_nm(
    cast: Any, tmp_path: Path, make: Any
) -> None:
    with pytest.raises(ApplicationError, match="does not state its voxel size") as refused:
        volume_import_local(cast.project, make(tmp_path))
    assert refused.value.code == "voxel_size_required"
    assert not Volume.objects.exists() and not Job.objects.exists()


def test_a_file_with_a_broken_header_is_refused_before_any_volume_or_job_exists(cast: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(_tiff(tmp_path).read_bytes()[:300])
    with pytest.raises(ApplicationError) as refused:
        volume_import_local(cast.project, bad, voxel_size_nm=(4.0, 4.0, 4.0))
    assert refused.value.code == "unreadable_source" and "broken.tif" in refused.value.message
    assert not Volume.objects.exists() and not Job.objects.exists()


def test_data_that_fails_to_decode_fails_the_job_and_leaves_no_volume(cast: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    tifffile.imwrite(bad, DATA, photometric="minisblack", compression="zlib")
    with tifffile.TiffFile(bad) as tif:
        offset = tif.pages[1].dataoffsets[0]
    raw = bytearray(bad.read_bytes())
    raw[offset : offset + 40] = b"\xff" * 40  # the second slice's zlib stream is garbage
    bad.write_bytes(bytes(raw))
    job = volume_import_local(cast.project, bad, voxel_size_nm=(4.0, 4.0, 4.0))
    assert job.state == Job.State.FAILED and "cannot decode" in job.message
    volume = volume_of(job)
    assert volume.state == Volume.State.FAILED
    assert not volume_zarr_path(volume).exists()
    client = Client()
    client.force_login(cast.viewer)
    assert client.get(f"/api/projects/{cast.project.pk}/volumes/").json() == []
    assert client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png").status_code == 404


def test_a_tiff_holding_several_images_says_which_it_imported(cast: Any, tmp_path: Path) -> None:
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(DATA, photometric="minisblack")
        tw.write(DATA[:, :20, :30], photometric="minisblack")
    job = volume_import_local(cast.project, path, voxel_size_nm=(10.0, 4.0, 4.0))
    assert job.state == Job.State.SUCCEEDED
    assert "two.tif holds 2 images; imported image 0 (3 x 40 x 60)" in job.message
    assert volume_of(job).source["notice"] == job.result["notice"]


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
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/",
                           {"path": "stack.tif", "voxel_size_nm": [10, 4, 4]}, content_type="application/json")
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).state == Job.State.QUEUED


def test_the_import_apis_ask_for_a_voxel_size_the_file_does_not_state(cast: Any, tmp_path: Path,
                                                                      settings: Any) -> None:
    settings.DATA_ROOT = tmp_path
    client = Client()
    client.force_login(cast.annotator)
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/", {"path": _tiff(tmp_path).name},
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "voxel_size_required"
    upload = SimpleUploadedFile("bx1.tif", _tiff(tmp_path).read_bytes(), content_type="image/tiff")
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/", {"file": upload})
    assert response.status_code == 400 and "bx1.tif does not state its voxel size" in response.json()["error"]["message"]
    assert not Volume.objects.exists() and not Job.objects.exists()
    assert not any(upload_dir().iterdir())  # the refused upload is not left on disk


def test_an_upload_of_an_unsupported_type_is_refused_before_anything_is_stored(cast: Any) -> None:
    client = Client()
    client.force_login(cast.annotator)
    upload = SimpleUploadedFile("page.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(f"/api/projects/{cast.project.pk}/volumes/", {"file": upload})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_format"
    assert not Volume.objects.exists()


def test_the_store_names_the_volume_and_its_label_classes_for_other_viewers(cast: Any, tmp_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    job = volume_import_local(cast.project, _mrc(tmp_path), name="Bx1 block 3")
    dest = volume_zarr_path(volume_of(job))
    image = next(iter(Reader(parse_url(str(dest)))()))
    assert image.metadata["name"] == "Bx1 block 3"
    labels = next(n for n in Reader(parse_url(str(dest / "labels" / "manual")))() if n.metadata.get("name") == "manual")
    mito = cast.project.label_classes.get(name="mitochondrion")
    assert labels.metadata["properties"][mito.value]["name"] == "mitochondrion"
    assert labels.metadata["color"][mito.value] is not None
