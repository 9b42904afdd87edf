"""Surface meshes: closed, in the volume frame (nm, XYZ), simplified, serialisable."""
from __future__ import annotations

import io
from typing import cast

import numpy as np
import pytest
import trimesh

from segmentation.core.meshes import cell_meshes, mask_mesh, mask_surface, mesh_bytes, scene_glb


def box_mask() -> np.ndarray:
    m = np.zeros((10, 12, 14), bool)
    m[2:8, 3:9, 4:12] = True  # 6 x 6 x 8 voxels
    return m


def test_it_makes_a_closed_outward_surface_of_a_box_close_to_its_volume() -> None:
    verts, faces = mask_surface(box_mask(), spacing=(2.0, 1.0, 1.0), smoothing_voxels=0)
    mesh = trimesh.Trimesh(verts, faces)
    assert mesh.is_watertight
    assert mesh.volume > 0  # outward normals
    assert mesh.volume == pytest.approx(6 * 2 * 6 * 8, rel=0.1)  # marching cubes chamfers the edges
    np.testing.assert_allclose(verts.min(0), [3.0, 2.5, 3.5])  # half a voxel outside the first voxel centres
    np.testing.assert_allclose(verts.max(0), [15.0, 8.5, 11.5])


def test_it_places_meshes_in_the_volume_frame_in_nm_and_xyz_order() -> None:
    mesh = mask_mesh(box_mask(), voxel_size_nm=(8, 4, 2), origin_voxel=(100, 10, 1), smoothing_voxels=0, max_faces=None)
    lo, hi = mesh.bounds
    np.testing.assert_allclose(lo, [(1 + 4 - 0.5) * 2, (10 + 3 - 0.5) * 4, (100 + 2 - 0.5) * 8])
    np.testing.assert_allclose(hi, [(1 + 11 + 0.5) * 2, (10 + 8 + 0.5) * 4, (100 + 7 + 0.5) * 8])
    assert mesh.volume > 0


def test_it_simplifies_to_the_face_budget_and_keeps_the_shape() -> None:
    z, y, x = np.ogrid[:48, :48, :48]
    ball = (z - 23.5) ** 2 + (y - 23.5) ** 2 + (x - 23.5) ** 2 <= 20**2
    full = mask_mesh(ball, voxel_size_nm=(4, 4, 4), max_faces=None)
    small = mask_mesh(ball, voxel_size_nm=(4, 4, 4), max_faces=2000)
    assert len(full.faces) > 2000 >= len(small.faces)
    assert small.volume == pytest.approx(full.volume, rel=0.05)


def test_it_writes_ply_and_glb_that_load_back() -> None:
    mesh = mask_mesh(box_mask(), voxel_size_nm=(4, 4, 4))
    ply = cast(trimesh.Trimesh, trimesh.load(io.BytesIO(mesh_bytes(mesh)), file_type="ply"))
    assert len(ply.faces) == len(mesh.faces)
    glb = cast(trimesh.Trimesh, trimesh.load(io.BytesIO(mesh_bytes(mesh, file_type="glb")), file_type="glb", force="mesh"))
    assert glb.volume == pytest.approx(mesh.volume, rel=1e-4)
    with pytest.raises(ValueError, match="vrml"):
        mesh_bytes(mesh, file_type="vrml")


def test_it_meshes_a_cell_and_each_class_inside_it_into_one_named_scene() -> None:
    cells = np.zeros((16, 30, 30), np.uint16)
    cells[1:15, 1:29, 1:15] = 3
    cells[1:15, 1:29, 15:29] = 4
    labels = np.zeros_like(cells, dtype=np.uint8)
    labels[3:12, 5:20, 3:12] = 1  # nucleus
    labels[6:9, 9:13, 6:9] = 2  # nucleolus
    labels[3:6, 22:25, 20:26] = 3  # mitochondrion, in cell 4
    meshes = cell_meshes(labels, cells, 3, voxel_size_nm=(4, 4, 4))
    assert sorted(meshes) == ["cell", "nucleolus", "nucleus"]
    assert meshes["nucleus"].volume > meshes["nucleolus"].volume > 0
    scene = cast(trimesh.Scene, trimesh.load(io.BytesIO(scene_glb(meshes)), file_type="glb"))
    assert sorted(scene.geometry) == ["cell", "nucleolus", "nucleus"]
    with pytest.raises(ValueError, match="9"):
        cell_meshes(labels, cells, 9, voxel_size_nm=(4, 4, 4))
