"""Reports over REST: who may read and run, what each download holds when read back."""
from __future__ import annotations

import io
import typing  # typing.cast: `cast` here is the fixture of roles
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import trimesh
import zarr
from django.conf import settings
from django.test import Client

from annotations.imaging import omezarr
from annotations.imaging.readers import Limits, open_source
from annotations.imaging.validation import LABEL_DTYPES
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from segmentation.job_kinds import REPORT
from segmentation.models import FeatureReport
from segmentation.reports.services import report_compute

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def report(phantom_volume: Any) -> FeatureReport:
    return report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")


def _urls(report: FeatureReport) -> list[str]:
    v, r = report.volume_id, report.pk
    return [f"/api/volumes/{v}/reports/", f"/api/projects/{report.volume.project_id}/reports/",
            f"/api/reports/{r}/", f"/api/reports/{r}/cells/", f"/api/reports/{r}/download/csv/",
            f"/api/reports/{r}/meshes.zip", f"/api/reports/{r}/cells/1/mesh.glb",
            f"/api/volumes/{v}/layers/truth/export.tif", f"/api/volumes/{v}/layers/truth/export.ome.zarr.zip",
            f"/volumes/{v}/results/", f"/projects/{report.volume.project_id}/results/", f"/reports/{r}/cells/1/3d/"]


def test_an_outsider_gets_404_for_every_report_url(report: FeatureReport, cast: Any) -> None:
    client = _client(cast.outsider)
    for url in _urls(report):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/api/volumes/{report.volume_id}/reports/", {}, content_type="application/json"
                       ).status_code == 404


def test_a_viewer_reads_every_report_url_but_cannot_run_a_report(report: FeatureReport, cast: Any) -> None:
    client = _client(cast.viewer)
    for url in _urls(report):
        assert client.get(url).status_code == 200, url
    response = client.post(f"/api/volumes/{report.volume_id}/reports/", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"]
    assert Job.objects.filter(kind=REPORT).count() == 1  # the fixture's own
    listing = client.get(f"/api/volumes/{report.volume_id}/reports/").json()
    assert listing["can_run"] is False and [r["id"] for r in listing["reports"]] == [report.pk]


def test_an_annotator_queues_a_report_on_the_default_layers(phantom_volume: Any, cast: Any) -> None:
    client = _client(cast.annotator)
    listing = client.get(f"/api/volumes/{phantom_volume.pk}/reports/").json()
    assert listing["can_run"] is True
    assert (listing["layers"]["labels_layer"], listing["layers"]["cells_layer"]) == ("truth", "cells_truth")
    response = client.post(f"/api/volumes/{phantom_volume.pk}/reports/", {"fenestration_closing_nm": 8},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.state, job.volume_id) == (REPORT, Job.State.QUEUED, phantom_volume.pk)
    assert job.params == {"labels_layer": "truth", "cells_layer": "cells_truth",
                          "fenestration_closing_nm": 8.0, "meshes": True}


def test_a_report_request_naming_a_missing_layer_is_refused(phantom_volume: Any, cast: Any) -> None:
    response = _client(cast.annotator).post(f"/api/volumes/{phantom_volume.pk}/reports/",
                                            {"labels_layer": "nope"}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_layer"
    assert not Job.objects.filter(kind=REPORT).exists()


def test_the_cell_table_and_the_table_downloads_agree_when_read_back(report: FeatureReport, cast: Any) -> None:
    client = _client(cast.viewer)
    expected = pd.read_parquet(Path(settings.MEDIA_ROOT) / report.files["parquet"])
    table = client.get(f"/api/reports/{report.pk}/cells/").json()
    assert [c["name"] for c in table["columns"]] == list(expected.columns)
    units = {c["name"]: c["unit"] for c in table["columns"]}
    assert units["cell_volume_um3"] == "µm³" and units["nucleus_pct_of_cell"] == "%"
    assert len(table["rows"]) == report.n_cells
    solidity = [row[list(expected.columns).index("nucleus_solidity")] for row in table["rows"]]
    assert [s is None for s in solidity] == expected["nucleus_solidity"].isna().tolist()

    got = {}
    for fmt in ("csv", "xlsx", "parquet"):
        response = client.get(f"/api/reports/{report.pk}/download/{fmt}/")
        assert response.status_code == 200
        assert f"report{report.pk}.{fmt}" in response["Content-Disposition"]
        got[fmt] = _body(response)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(got["parquet"])), expected)
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(got["csv"])), expected, check_dtype=False)
    sheets = pd.read_excel(io.BytesIO(got["xlsx"]), sheet_name=None)
    assert set(sheets) == {"cells", "columns"}
    assert sheets["columns"]["column"].tolist() == list(expected.columns)
    assert client.get(f"/api/reports/{report.pk}/download/json/").status_code == 404


def test_label_layers_download_as_tiff_and_ome_zarr_zip_equal_to_the_stored_layer(
        report: FeatureReport, cast: Any) -> None:
    volume = report.volume
    client = _client(cast.viewer)
    for layer in ("truth", "cells_truth"):
        stored = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), layer, 0)[:])
        tif = client.get(f"/api/volumes/{volume.pk}/layers/{layer}/export.tif")
        assert tif["Content-Type"] == "image/tiff"
        assert tif["Content-Disposition"].endswith(f'-{layer}.ome.tif"')
        exported = Path(settings.MEDIA_ROOT) / f"{layer}.ome.tif"
        exported.write_bytes(_body(tif))
        with tifffile.TiffFile(exported) as handle:
            assert len(handle.pages) == volume.shape_z and handle.is_ome
            assert handle.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            assert np.array_equal(handle.asarray(), stored)
        with open_source(exported, limits=Limits(dtypes=LABEL_DTYPES)) as source:  # calibrated, as Fiji reads it
            assert source.voxel_size_nm == pytest.approx(volume.voxel_size_nm)

        response = client.get(f"/api/volumes/{volume.pk}/layers/{layer}/export.ome.zarr.zip")
        assert response.streaming
        path = Path(settings.MEDIA_ROOT) / f"{layer}.zip"
        path.write_bytes(_body(response))
        group = zarr.open_group(zarr.storage.ZipStore(path, mode="r"), mode="r")
        assert np.array_equal(group["0"][:], stored)
        attrs = dict(group.attrs)
        ome = attrs.get("ome", attrs)
        assert "multiscales" in ome and "image-label" in ome
    assert client.get(f"/api/volumes/{volume.pk}/layers/nope/export.tif").status_code == 404


def test_meshes_download_as_glb_per_cell_ply_per_class_and_a_zip_of_all(report: FeatureReport, cast: Any) -> None:
    client = _client(cast.viewer)
    cid = report.summary["mesh_cells"][0]
    glb = _body(client.get(f"/api/reports/{report.pk}/cells/{cid}/mesh.glb"))
    scene = typing.cast(trimesh.Scene, trimesh.load(io.BytesIO(glb), file_type="glb", force="scene"))
    assert "cell" in scene.geometry
    ply = client.get(f"/api/reports/{report.pk}/cells/{cid}/cell.ply")
    assert ply.status_code == 200 and "attachment" in ply["Content-Disposition"]
    mesh = typing.cast(trimesh.Trimesh, trimesh.load(io.BytesIO(_body(ply)), file_type="ply"))
    assert len(mesh.faces) == len(typing.cast(trimesh.Trimesh, scene.geometry["cell"]).faces)
    assert client.get(f"/api/reports/{report.pk}/cells/{cid}/golgi.ply").status_code == 404
    assert client.get(f"/api/reports/{report.pk}/cells/9999/mesh.glb").status_code == 404
    archive = zipfile.ZipFile(io.BytesIO(_body(client.get(f"/api/reports/{report.pk}/meshes.zip"))))
    assert sorted(archive.namelist()) == sorted(f"cell_{c}.glb" for c in report.summary["mesh_cells"])
    assert archive.read(f"cell_{cid}.glb") == glb


def test_a_report_becomes_stale_when_its_layers_change(report: FeatureReport, cast: Any) -> None:
    client = _client(cast.viewer)
    assert client.get(f"/api/reports/{report.pk}/").json()["stale"] is False
    layer = report.volume.layers.get(name="truth")
    layer.version += 1
    layer.save(update_fields=["version"])
    assert client.get(f"/api/reports/{report.pk}/").json()["stale"] is True


def test_the_results_pages_mount_the_app_with_the_role(report: FeatureReport, cast: Any) -> None:
    page = _client(cast.viewer).get(f"/volumes/{report.volume_id}/results/").content.decode()
    assert f'data-volume-id="{report.volume_id}"' in page and 'data-can-run="false"' in page
    page = _client(cast.annotator).get(f"/volumes/{report.volume_id}/results/").content.decode()
    assert 'data-can-run="true"' in page
    page = _client(cast.viewer).get(f"/reports/{report.pk}/cells/1/3d/").content.decode()
    assert f'data-report-id="{report.pk}"' in page and 'data-cell-id="1"' in page
