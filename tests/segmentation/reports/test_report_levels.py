"""The report job reads each measure at its pyramid level, meshes cells at a coarse level, and
makes a full-resolution mesh on request."""
from __future__ import annotations

import io
import typing  # typing.cast: `cast` here is the fixture of roles
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import trimesh
from django.conf import settings
from django.test import Client

from annotations.imaging import omezarr
from annotations.layers import layer_create
from annotations.storage import volume_zarr_path
from segmentation.core.features import describe_columns, level_plan
from segmentation.models import FeatureReport
from segmentation.reports import services
from segmentation.reports.services import MESH_MAX_FACES, report_compute, report_dir
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

SHAPE = (16, 1040, 1040)  # Y and X over 512: levels 0, 1, 2
VOXEL = (5.0, 5.0, 5.0)
CENTRES = [(260, 260), (260, 780), (780, 260), (780, 780)]


def _disc(radius: float, centre: tuple[int, int]) -> np.ndarray:
    y, x = np.ogrid[: SHAPE[1], : SHAPE[2]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


@pytest.fixture
def big_volume(cast: Any, tmp_path: Path) -> Any:
    """Four disc cells (radius 200 px, all planes) with a nucleus and nucleolus, in layers
    ``truth`` (project class values) and ``cells_truth``."""
    values = {c.name: c.value for c in cast.project.label_classes.all()}
    cells = np.zeros(SHAPE, np.uint16)
    labels = np.full(SHAPE, values["background"], np.uint8)
    for cid, centre in enumerate(CENTRES, start=1):
        cells[:, _disc(200, centre)] = cid
        labels[2:14, _disc(90 + 5 * cid, centre)] = values["nucleus"]
        labels[5:10, _disc(25, centre)] = values["nucleolus"]
    image = np.random.default_rng(0).integers(40, 220, SHAPE, dtype=np.uint8)
    volume: Any = make_volume(cast.project, tmp_path, data=image, name="big", voxel_size_nm=VOXEL)  # a Volume carrying .cells
    dest = volume_zarr_path(volume)
    for name, kind, data in (("truth", "labels", labels), ("cells_truth", "instances", cells)):
        layer_create(volume, name, kind=kind, editable=False)
        omezarr.open_label_level(dest, name, 0, mode="r+")[:] = data
        omezarr.update_label_pyramid(dest, name)
    volume.cells = cells
    return volume


def test_the_report_records_and_uses_the_level_each_measure_is_read_at(big_volume: Any, cast: Any) -> None:
    report = report_compute(big_volume, labels_layer="truth", cells_layer="cells_truth")
    plan = level_plan(describe_columns(report.classes), report.classes, voxel_size_nm=VOXEL, n_levels=3)
    levels = report.summary["measure_levels"]
    assert levels == {column: rl.level for column, rl in plan.items()}
    assert levels["cell_volume_um3"] >= 1 and levels["texture_cell_std"] == 0
    rl = plan["cell_volume_um3"]
    assert report.summary["level_voxel_nm"][str(rl.level)] == list(rl.spacing_nm)
    assert report.summary["raised_levels"] == {}  # every box fits CELL_BOX_MAX_VOXELS
    client = Client()
    client.force_login(cast.viewer)
    payload = client.get(f"/api/reports/{report.pk}/").json()
    assert payload["measure_levels"] == levels and payload["raised_levels"] == {}

    # The stored cell volume is the count at that level (every z_step-th plane) times its voxel,
    # which differs from level 0's count.
    table = pd.read_parquet(Path(settings.MEDIA_ROOT) / report.files["parquet"]).set_index("cell_id")
    coarse = np.asarray(omezarr.open_label_level(volume_zarr_path(big_volume), "cells_truth", rl.level)[::rl.z_step])
    for cid in range(1, 5):
        expected = np.count_nonzero(coarse == cid) * np.prod(rl.spacing_nm) / 1e9
        level0 = np.count_nonzero(big_volume.cells == cid) * np.prod(VOXEL) / 1e9
        assert table.loc[cid, "cell_volume_um3"] == pytest.approx(expected, rel=1e-12)
        assert table.loc[cid, "cell_volume_um3"] != level0
        assert table.loc[cid, "cell_volume_um3"] == pytest.approx(level0, rel=0.02)


def test_meshes_are_made_at_a_coarse_level_simplified_and_placed_in_the_volume_frame(big_volume: Any) -> None:
    report = report_compute(big_volume, labels_layer="truth", cells_layer="cells_truth")
    # 400 px across at 5 nm: level 1 (10 nm) is the coarsest with >= MESH_VOXELS_ACROSS voxels.
    assert report.summary["mesh_levels"] == {str(cid): 1 for cid in range(1, 5)}
    for cid, (cy, cx) in enumerate(CENTRES, start=1):
        scene = typing.cast(trimesh.Scene, trimesh.load(report_dir(report) / "meshes" / f"cell_{cid}.glb", file_type="glb", force="scene"))
        cell = typing.cast(trimesh.Trimesh, scene.geometry["cell"])
        assert len(cell.faces) <= MESH_MAX_FACES
        (x0, y0, _), (x1, y1, _) = cell.bounds
        # Within a level-1 voxel (plus the smoothing's half voxel) of the disc's extent in nm.
        assert x0 == pytest.approx((cx - 200) * 5, abs=20) and x1 == pytest.approx((cx + 200) * 5, abs=20)
        assert y0 == pytest.approx((cy - 200) * 5, abs=20) and y1 == pytest.approx((cy + 200) * 5, abs=20)


def test_a_full_resolution_mesh_downloads_from_level_0_and_a_too_large_one_is_refused(
        big_volume: Any, cast: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    report = report_compute(big_volume, labels_layer="truth", cells_layer="cells_truth")
    client = Client()
    client.force_login(cast.viewer)
    base = f"/api/reports/{report.pk}/cells/2/nucleus.ply"
    view = typing.cast(trimesh.Trimesh, trimesh.load(io.BytesIO(client.get(base).content), file_type="ply"))
    response = client.get(f"{base}?resolution=full")
    assert response.status_code == 200 and "full.ply" in response["Content-Disposition"]
    full = typing.cast(trimesh.Trimesh, trimesh.load(io.BytesIO(response.content), file_type="ply"))
    assert len(full.faces) > 4 * len(view.faces)
    # Level 0's nucleus: a 12-plane disc of radius 100 px at 5 nm.
    assert full.volume == pytest.approx(np.pi * 100**2 * 12 * 125, rel=0.05)

    bad = client.get(f"{base}?resolution=huge")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid")
    assert client.get(f"/api/reports/{report.pk}/cells/2/golgi.ply?resolution=full").json()["error"]["code"] == "unknown_part"
    monkeypatch.setattr(services, "FULL_MESH_MAX_VOXELS", 1000)
    refused = client.get(f"{base}?resolution=full")
    assert (refused.status_code, refused.json()["error"]["code"]) == (413, "mesh_too_large")
    assert FeatureReport.objects.count() == 1
