"""The big-volume generator (benchmarks/bigvolume.py) at small sizes: truth, outputs, blocks, memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from benchmarks._bigphantom import CLASS_VALUES, BigPhantom, Block
from benchmarks.bigvolume import generate, write_bigtiff, write_ome_zarr, write_tiff_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def whole_cells() -> tuple[BigPhantom, Block]:
    """64 x 128 x 128 at 300 nm: 19 x 38 x 38 µm, room for whole cells of real size."""
    ph = BigPhantom((64, 128, 128), voxel_nm=(300.0, 300.0, 300.0), seed=1)
    return ph, ph.block((0, 64), (0, 128), (0, 128))





def test_every_class_cells_and_extracellular_space_appear(whole_cells: tuple[BigPhantom, Block]) -> None:
    _ph, b = whole_cells
    assert b.image.dtype == np.uint8 and b.classes.dtype == np.uint8 and b.image.shape == (64, 128, 128)
    counts = np.bincount(b.classes.ravel(), minlength=6)
    for name, value in CLASS_VALUES.items():
        assert counts[value] > 0, name
    assert len(np.unique(b.cells[b.cells > 0])) >= 3
    assert np.count_nonzero(b.cells == 0) > 0  # extracellular space and clefts
    assert np.all(b.classes[b.cells == 0] == 0)  # organelles only inside cells


def test_the_image_shows_the_classes_with_the_phantoms_contrast(whole_cells: tuple[BigPhantom, Block]) -> None:
    _ph, b = whole_cells
    img = b.image.astype(float)
    cyto = img[(b.classes == 0) & (b.cells > 0)].mean()
    assert img[b.classes == CLASS_VALUES["lysosome"]].mean() < img[b.classes == CLASS_VALUES["nucleus"]].mean() < cyto
    assert img[b.cells == 0].mean() > cyto  # resin is lighter than cytoplasm
    assert 8 < img[(b.classes == 0) & (b.cells > 0)].std() < 30  # texture and noise, not flat


def test_blocks_of_any_size_and_order_give_the_same_voxels() -> None:
    ph = BigPhantom((24, 160, 160), voxel_nm=(60.0, 60.0, 60.0), seed=4)
    whole = ph.block((0, 24), (0, 160), (0, 160))
    again = BigPhantom(ph.shape, voxel_nm=ph.voxel_nm, seed=ph.seed)  # fresh caches, blocks in reverse order
    parts = {k: np.zeros_like(getattr(whole, k)) for k in ("image", "classes", "cells")}
    ranges = [(z, y, x) for z in range(0, 24, 11) for y in range(0, 160, 57) for x in range(0, 160, 41)]
    for z, y, x in reversed(ranges):
        b = again.block((z, min(24, z + 11)), (y, min(160, y + 57)), (x, min(160, x + 41)))
        for k, arr in parts.items():
            arr[z:z + 11, y:y + 57, x:x + 41] = getattr(b, k)
    for k, arr in parts.items():
        np.testing.assert_array_equal(arr, getattr(whole, k), err_msg=k)
    assert len(np.unique(whole.cells)) >= 2 and np.count_nonzero(whole.classes) > 0  # not a trivial region


def test_another_seed_gives_another_volume(whole_cells: tuple[BigPhantom, Block]) -> None:
    ph, b = whole_cells
    other = BigPhantom(ph.shape, voxel_nm=ph.voxel_nm, seed=ph.seed + 1).block((20, 24), (0, 32), (0, 32))
    assert not np.array_equal(other.image, b.image[20:24, :32, :32])


def test_every_cell_holds_a_nucleus(whole_cells: tuple[BigPhantom, Block]) -> None:
    ph, b = whole_cells
    nuclear = np.isin(b.classes, (CLASS_VALUES["nucleus"], CLASS_VALUES["nucleolus"]))
    # Each cell's nucleus sits on its seed: wherever a seed lies in the volume, its voxel
    # is that cell's nucleus.
    seeds_inside = 0
    for cell_id, centre in ph.nucleus_centres().items():
        p = tuple(np.round(centre).astype(int))
        if all(0 <= c < s for c, s in zip(p, ph.shape)):
            seeds_inside += 1
            assert b.cells[p] == cell_id and nuclear[p], cell_id
    assert seeds_inside >= 2
    # Every cell the volume holds whole (touching no face) has nucleus voxels.
    faces = np.zeros(b.cells.shape, bool)
    faces[[0, -1]] = faces[:, [0, -1]] = faces[:, :, [0, -1]] = True
    cut = set(np.unique(b.cells[faces]).tolist())
    whole = [c for c in np.unique(b.cells).tolist() if c and c not in cut]
    assert whole, "the test volume should hold at least one whole cell"
    for c in whole:
        assert np.any(nuclear & (b.cells == c)), c


def test_protrusions_carry_their_cells_id_out_of_the_cell_body(whole_cells: tuple[BigPhantom, Block]) -> None:
    ph, b = whole_cells
    vox = np.array(ph.voxel_nm)
    tubes = [t for t in ph.tubes_in(np.zeros(3), (np.array(ph.shape) - 1) * vox)
             if np.all(t.points[16] >= 0) and np.all(t.points[16] / vox < np.array(ph.shape) - 0.5)]
    assert tubes
    for t in tubes:
        top = tuple(np.round(t.points[16] / vox).astype(int))  # the arc's top, out of the base plane
        assert b.cells[top] == t.cell_id


def test_the_three_formats_read_back_identical(tmp_path: Path) -> None:
    ph = BigPhantom((12, 96, 160), voxel_nm=(100.0, 100.0, 100.0), seed=5)
    ref = ph.block((0, 12), (0, 96), (0, 160))
    write_ome_zarr(ph, tmp_path / "v.ome.zarr", block=(8, 64, 64))
    write_bigtiff(ph, tmp_path / "v.ome.tif", tile=64, labels_out=tmp_path / "tif-truth")
    write_tiff_folder(ph, tmp_path / "slices", rows=40, cols=64, labels_out=tmp_path / "slices-truth")
    store = zarr.open_group(str(tmp_path / "v.ome.zarr"), mode="r")
    got = {
        "ome-zarr": (store["0"][:], store["labels/classes/0"][:], store["labels/cells/0"][:]),
        "bigtiff": tuple(tifffile.imread(p) for p in (tmp_path / "v.ome.tif", tmp_path / "tif-truth/classes.ome.tif",
                                                      tmp_path / "tif-truth/cells.ome.tif")),
        "tiff-folder": tuple(
            np.stack([tifffile.imread(f) for f in sorted(d.glob("slice_*.tif"))]).reshape(ref.image.shape)
            for d in (tmp_path / "slices", tmp_path / "slices-truth/classes", tmp_path / "slices-truth/cells")),
    }
    for fmt, (image, classes, cells) in got.items():
        np.testing.assert_array_equal(image, ref.image, err_msg=fmt)
        np.testing.assert_array_equal(classes, ref.classes, err_msg=fmt)
        np.testing.assert_array_equal(cells, ref.cells, err_msg=fmt)
    with tifffile.TiffFile(tmp_path / "v.ome.tif") as tif:
        page = tif.pages.first
        assert tif.is_bigtiff and page.is_tiled and page.tilelength == 64 and page.compression == 8  # zlib
        assert len(tif.series) == 1 and len(tif.pages) == 12


def test_the_ome_zarr_store_is_laid_out_as_omezarr_writes_it(tmp_path: Path) -> None:
    from annotations.imaging.omezarr import downsample_mean, downsample_mode, read_info

    ph = BigPhantom((4, 530, 520), voxel_nm=(50.0, 50.0, 50.0), seed=2)
    write_ome_zarr(ph, tmp_path / "a.ome.zarr", block=(4, 256, 256))
    write_ome_zarr(ph, tmp_path / "b.ome.zarr", block=(3, 128, 384))
    info = read_info(tmp_path / "a.ome.zarr")
    assert info.shape == (4, 530, 520) and info.voxel_size_nm == (50.0, 50.0, 50.0)
    assert [lvl.shape for lvl in info.levels] == [(4, 530, 520), (4, 265, 260)]
    assert set(info.labels) == {"classes", "cells"} and info.dtype == "uint8"
    a = zarr.open_group(str(tmp_path / "a.ome.zarr"), mode="r")
    b = zarr.open_group(str(tmp_path / "b.ome.zarr"), mode="r")
    for path in ("0", "1", "labels/classes/0", "labels/classes/1", "labels/cells/1"):
        np.testing.assert_array_equal(a[path][:], b[path][:], err_msg=path)  # block size changes nothing
    np.testing.assert_array_equal(a["1"][:], downsample_mean(a["0"][:]))
    np.testing.assert_array_equal(a["labels/cells/1"][:], downsample_mode(a["labels/cells/0"][:]))
    with pytest.raises(ValueError, match="not a multiple of 2"):
        write_ome_zarr(ph, tmp_path / "c.ome.zarr", block=(4, 255, 256))


def test_it_writes_a_report_next_to_the_output(tmp_path: Path) -> None:
    report = generate((4, 64, 64), out=tmp_path / "r.ome.zarr", fmt="ome-zarr", voxel_nm=(200.0, 200.0, 200.0),
                      seed=7, block=(4, 64, 64), quiet=True)
    saved = json.loads((tmp_path / "r.ome.zarr.json").read_text())
    assert saved["shape"] == [4, 64, 64] and saved["seed"] == 7 and saved["voxel_size_nm"] == [200.0] * 3
    assert saved["class_values"] == CLASS_VALUES and saved["peak_rss_bytes"] == report.peak_rss_bytes > 0
    assert saved["seconds"] > 0 and saved["labels"] == {"classes": "labels/classes", "cells": "labels/cells"}


_CHILD = r"""
import json, resource, sys
sys.path.insert(0, {root!r})
import benchmarks.bigvolume, annotations.imaging.omezarr, ome_zarr.writer, zarr  # the same imports in both runs
if {run!r}:
    benchmarks.bigvolume.main({argv!r})
print(json.dumps({{"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""


def _child_peak(run: bool, argv: list[str]) -> int:
    code = _CHILD.format(root=str(ROOT), run=run, argv=argv)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak"])


def test_memory_stays_bounded_by_the_block_not_the_volume(tmp_path: Path) -> None:
    """64 and 256 MiB of voxels (4 nm, 2048² slices) written as OME-Zarr pyramids in blocks of
    1 MiB: the generation's own memory (peak minus the interpreter and its libraries, measured
    alike) is the same for both within 32 MiB, and under half the larger volume (it holds a
    block, the noise table and the object lists of the cells near it)."""
    base = _child_peak(False, [])
    own = {}
    for z in (16, 64):
        argv = ["--shape", str(z), "2048", "2048", "--voxel-nm", "4", "--format", "ome-zarr", "--no-labels",
                "--out", str(tmp_path / f"v{z}.ome.zarr"), "--block", "16", "256", "256", "--seed", "2"]
        own[z] = _child_peak(True, argv) - base
        assert (tmp_path / f"v{z}.ome.zarr.json").exists()
    mib = {z: round(v / 2**20) for z, v in own.items()}
    assert own[64] - own[16] < 32 * 2**20, f"own peak grew with the volume: {mib} MiB"
    assert own[64] < 128 * 2**20, f"own peak {mib[64]} MiB for a 256 MiB volume"
