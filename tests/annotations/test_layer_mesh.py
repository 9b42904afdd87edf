"""The viewer's 3D view: a label layer's surfaces as a GLB, one node per class in its colour."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotations.layer_mesh import mesh_level
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = pytest.mark.django_db


def _glb_json(data: bytes) -> dict[str, Any]:
    assert data[:4] == b"glTF"
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + length])


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_class_layer_gives_a_node_per_painted_class_and_follows_its_version(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    url = f"/api/volumes/{pv.volume.pk}/layers/manual/mesh.glb"
    response = _client(cast.viewer).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "model/gltf-binary"
    gltf = _glb_json(response.content)
    names = {n.get("name") for n in gltf["nodes"]}
    assert {"nucleus", "mitochondrion"} <= names and "background" not in names
    assert gltf["asset"]["extras"]["unit"] == "nanometre"
    etag = response["ETag"]
    assert _client(cast.viewer).get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    layer = pv.volume.layers.get(name="manual")
    layer.version += 1
    layer.save(update_fields=["version"])
    assert _client(cast.viewer).get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_one_class_or_cell_and_clear_refusals(cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path, cells=True)
    base = f"/api/volumes/{pv.volume.pk}/layers"
    nucleus = cast.project.label_classes.get(name="nucleus").value
    one = _glb_json(_client(cast.viewer).get(f"{base}/manual/mesh.glb?value={nucleus}").content)
    assert {n.get("name") for n in one["nodes"]} - {None} == {"nucleus"}
    cell = _client(cast.viewer).get(f"{base}/cells/mesh.glb?value=1")
    assert cell.status_code == 200 and "cell 1" in {n.get("name") for n in _glb_json(cell.content)["nodes"]}
    missing = _client(cast.viewer).get(f"{base}/cells/mesh.glb?value=999")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "nothing_to_mesh")
    assert _client(cast.viewer).get(f"{base}/cells/mesh.glb?value=-1").json()["error"]["code"] == "invalid"
    assert _client(cast.viewer).get(f"{base}/nowhere/mesh.glb").status_code == 404


def test_the_mesh_level_is_the_finest_that_is_small_enough() -> None:
    levels = [{"level": i, "shape": [10, 1024 // 2**i, 1024 // 2**i]} for i in range(4)]
    assert mesh_level(levels, max_voxels=10 * 256 * 256)["level"] == 2
    assert mesh_level(levels, max_voxels=10)["level"] == 3
    assert mesh_level(levels)["level"] == 1  # 10 x 1024² is over the 4 M budget
