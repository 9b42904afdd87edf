"""Exported files say their units: Parquet fields carry unit and description, GLBs their scale."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from segmentation.core.features.report import write_report
from segmentation.core.meshes import mask_mesh, scene_glb


def test_parquet_fields_carry_their_unit_and_description(tmp_path: Path) -> None:
    table = pd.DataFrame({"cell_id": [1, 2], "cell_volume_um3": [812.5, 640.0], "extra": ["a", "b"]})
    path = write_report(table, tmp_path / "cells.parquet",
                        columns={"cell_volume_um3": ("µm³", "Cell volume."), "cell_id": ("", "Cell id.")})
    schema = pq.read_schema(path)
    assert schema.field("cell_volume_um3").metadata[b"unit"].decode() == "µm³"
    assert schema.field("cell_volume_um3").metadata[b"description"] == b"Cell volume."
    assert schema.field("extra").metadata[b"unit"] == b""
    assert json.loads(schema.metadata[b"emportal.units"])["cell_volume_um3"] == "µm³"
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)  # pandas still reads it as it was


def _gltf_json(glb: bytes) -> dict:
    length, kind = struct.unpack_from("<I4s", glb, 12)
    assert kind == b"JSON"
    return json.loads(glb[20 : 20 + length])


def test_a_glb_states_that_its_coordinates_are_nanometres() -> None:
    mask = np.zeros((8, 16, 16), bool)
    mask[2:6, 4:12, 4:12] = True
    mesh = mask_mesh(mask, voxel_size_nm=(40, 5, 5), max_faces=None)
    glb = scene_glb({"cell": mesh})
    extras = _gltf_json(glb)["asset"]["extras"]
    assert extras["unit"] == "nanometre" and extras["metresPerUnit"] == 1e-9
    # the vertices are indeed nanometres: the box spans ~8 columns of 5 nm in x
    import trimesh

    loaded = trimesh.load(trimesh.util.wrap_as_stream(glb), file_type="glb", force="mesh")
    assert isinstance(loaded, trimesh.Trimesh)
    assert 30 < np.ptp(loaded.vertices[:, 0]) < 45 and 120 < np.ptp(loaded.vertices[:, 2]) < 180
