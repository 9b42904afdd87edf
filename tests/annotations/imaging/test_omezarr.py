from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import pytest
import zarr

from annotations.imaging import omezarr
from annotations.imaging.omezarr import (
    create_label_layer,
    delete_label_layer,
    downsample_mean,
    downsample_mode,
    open_label_level,
    open_level,
    pyramid_shapes,
    read_info,
    update_label_pyramid,
    write_pyramid,
)
from annotations.imaging.readers import ArraySource, Source, open_source


def _smooth(shape: tuple[int, int, int], dtype: str = "uint8") -> np.ndarray:
    z, y, x = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    return ((z * 7 + y + 2 * x) % 256).astype(dtype)


def test_pyramid_halves_y_and_x_until_the_slice_fits_512() -> None:
    shapes = pyramid_shapes((7, 2000, 1025))
    assert shapes == [(7, 2000, 1025), (7, 1000, 513), (7, 500, 257)]
    assert pyramid_shapes((3, 512, 100)) == [(3, 512, 100)]


def test_mean_downsample_averages_2x2_blocks_and_replicates_odd_edges() -> None:
    block = np.array([[[0, 2, 10], [4, 6, 20], [100, 100, 30]]], np.uint8)
    out = downsample_mean(block)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 2)
    assert out.tolist() == [[[3, 15], [100, 30]]]


def test_mode_downsample_keeps_majority_and_prefers_labels_over_unlabeled_on_ties() -> None:
    block = np.array([[[1, 1, 0, 5], [1, 2, 5, 0], [0, 7, 3, 4], [0, 9, 9, 8]]], np.uint16)
    out = downsample_mode(block)
    assert out.tolist() == [[[1, 5], [0, 3]]]
    assert out.dtype == np.uint16


def test_it_writes_a_pyramid_that_ome_zarr_reader_understands(tmp_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    vol = _smooth((6, 1100, 530))
    dest = tmp_path / "v.ome.zarr"
    info = write_pyramid(ArraySource(vol), dest, voxel_size_nm=(20, 4, 5))
    assert [lv.shape for lv in info.levels] == [(6, 1100, 530), (6, 550, 265), (6, 275, 133)]
    assert [lv.scale_nm for lv in info.levels] == [(20, 4, 5), (20, 8, 10), (20, 16, 20)]
    nodes = list(Reader(parse_url(str(dest)))())
    image = nodes[0]
    assert any(isinstance(spec, Multiscales) for spec in image.specs)
    assert [tuple(d.shape) for d in image.data] == [lv.shape for lv in info.levels]
    axes = image.metadata["axes"]
    assert [a["name"] for a in axes] == ["z", "y", "x"] and {a["unit"] for a in axes} == {"nanometer"}
    scales = [t[0]["scale"] for t in image.metadata["coordinateTransformations"]]
    assert scales == [[20, 4, 5], [20, 8, 10], [20, 16, 20]]
    np.testing.assert_array_equal(np.asarray(image.data[0][2]), vol[2])


def test_each_level_is_the_mean_downsample_of_the_one_above(tmp_path: Path) -> None:
    vol = np.random.default_rng(0).integers(0, 65535, (5, 1030, 40), dtype=np.uint16)
    dest = tmp_path / "v.ome.zarr"
    info = write_pyramid(ArraySource(vol), dest, voxel_size_nm=(1, 1, 1), chunks=(2, 64, 64))
    assert info.dtype == "uint16" and info.n_levels == 3
    np.testing.assert_array_equal(open_level(dest, 0)[:], vol)
    np.testing.assert_array_equal(open_level(dest, 1)[:], downsample_mean(vol))
    np.testing.assert_array_equal(open_level(dest, 2)[:], downsample_mean(downsample_mean(vol)))
    assert open_level(dest, 1).chunks == (2, 64, 20)  # clipped to the level's 20 columns


@pytest.mark.parametrize(("region_bytes", "ngff"), [(2**20, "0.4"), (2**17, "0.4"), (2**20, "0.5")])
# Every way a region reaches the store: whole chunks on threads, thin regions merged, zarr v3 through zarr.
def test_a_tiled_tiff_imports_exactly_at_level_0_and_as_means_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region_bytes: int, ngff: str
) -> None:
    import tifffile

    vol = np.random.default_rng(3).integers(0, 255, (9, 1100, 1300), dtype=np.uint8)
    vol[:, :300, :300] = 0  # whole chunks of zeros are not written, as zarr leaves them out
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, vol, tile=(128, 128), compression="zlib", photometric="minisblack")
    # Regions of 256 px: levels 0 and 1 come from each region, level 2 from level 1; at
    # 128 KiB a region is 2 slices, thinner than a chunk.
    monkeypatch.setattr(omezarr, "REGION_PX", 256)
    monkeypatch.setattr(omezarr, "REGION_BYTES", region_bytes)
    with open_source(path) as src:
        info = write_pyramid(src, tmp_path / "v.ome.zarr", voxel_size_nm=(4, 4, 4), chunks=(4, 128, 128),
                             ngff_version=ngff)
    assert info.n_levels == 3
    expected = vol
    for level in range(info.n_levels):
        np.testing.assert_array_equal(open_level(tmp_path / "v.ome.zarr", level)[:], expected)
        expected = downsample_mean(expected)


def test_it_uses_the_source_voxel_size_and_refuses_when_none_is_known(tmp_path: Path) -> None:
    vol = _smooth((2, 20, 20))
    info = write_pyramid(ArraySource(vol, voxel_size_nm=(8, 4, 4)), tmp_path / "a.ome.zarr")
    assert info.voxel_size_nm == (8, 4, 4)
    with pytest.raises(ValueError, match="voxel size unknown"):
        write_pyramid(ArraySource(vol), tmp_path / "b.ome.zarr")
    assert not (tmp_path / "b.ome.zarr").exists()


def test_it_shifts_int16_losslessly_into_uint16(tmp_path: Path) -> None:
    vol = (_smooth((2, 30, 30)).astype(np.int16) - 128) * 100
    info = write_pyramid(ArraySource(vol), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1))
    stored = open_level(tmp_path / "v.ome.zarr", 0)[:]
    assert info.dtype == "uint16" and info.source_dtype == "int16"
    np.testing.assert_array_equal(stored.astype(np.int32) / info.intensity_scale + info.intensity_offset, vol)


def test_it_rescales_float32_to_uint8_by_robust_percentiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vol = rng.normal(1000.0, 10.0, (4, 64, 64)).astype(np.float32)
    vol[0, 0, 0] = 1e9  # one hot pixel must not flatten the contrast
    vol[1, 0, 0] = np.nan
    info = write_pyramid(ArraySource(vol), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1))
    stored = np.asarray(open_level(tmp_path / "v.ome.zarr", 0)[:])
    assert info.dtype == "uint8" and info.source_dtype == "float32"
    assert stored[0, 0, 0] == 255 and stored[1, 0, 0] == 0
    assert 100 < np.median(stored) < 155 and stored.std() > 30
    expected = np.clip(np.rint((vol[2] - info.intensity_offset) * info.intensity_scale), 0, 255)
    np.testing.assert_allclose(stored[2], expected, atol=1)


def test_it_records_a_display_window_in_omero_metadata(tmp_path: Path) -> None:
    vol = (_smooth((3, 64, 64)).astype(np.uint16) * 10 + 1000).astype(np.uint16)
    dest = tmp_path / "v.ome.zarr"
    info = write_pyramid(ArraySource(vol), dest, voxel_size_nm=(1, 1, 1))
    window = json.loads((dest / ".zattrs").read_text())["omero"]["channels"][0]["window"]
    assert info.window == (window["start"], window["end"])
    assert 1000 <= info.window[0] < info.window[1] <= 1000 + 2550


def test_it_writes_ngff_05_on_zarr_v3_when_asked(tmp_path: Path) -> None:
    vol = _smooth((2, 600, 40))
    dest = tmp_path / "v.ome.zarr"
    info = write_pyramid(ArraySource(vol), dest, voxel_size_nm=(1, 1, 1), ngff_version="0.5")
    meta = json.loads((dest / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["attributes"]["ome"]["version"] == "0.5"
    assert info.ngff_version == "0.5" and info.n_levels == 2
    np.testing.assert_array_equal(open_level(dest, 0)[:], vol)


def test_progress_reaches_one_and_grows_monotonically(tmp_path: Path) -> None:
    seen: list[float] = []
    write_pyramid(ArraySource(_smooth((10, 16, 16))), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1),
                  chunks=(3, 16, 16), on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4


class _FailingSource(Source):
    format = "broken"

    def __init__(self, fail_at: int) -> None:
        super().__init__(Path("broken.tif"), (8, 32, 32), np.dtype("uint8"), (1.0, 1.0, 1.0))
        self.fail_at = fail_at

    def _read(self, z0: int, z1: int) -> np.ndarray:
        if z1 > self.fail_at:
            raise OSError("bad strip")
        return np.ones((z1 - z0, 32, 32), np.uint8)


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="corrupt or truncated"):
        write_pyramid(_FailingSource(fail_at=5), tmp_path / "v.ome.zarr", chunks=(2, 32, 32))
    assert list(tmp_path.iterdir()) == []


class _Cancelled(BaseException):
    pass


def test_a_cancelled_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise _Cancelled  # any exception cancels, even a BaseException such as SystemExit

    with pytest.raises(_Cancelled):
        write_pyramid(ArraySource(_smooth((8, 16, 16))), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1),
                      chunks=(2, 16, 16), on_progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_to_overwrite_an_existing_volume(tmp_path: Path) -> None:
    (tmp_path / "v.ome.zarr").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        write_pyramid(ArraySource(_smooth((1, 8, 8))), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1))


def test_it_holds_only_one_slab_of_the_source_at_a_time(tmp_path: Path) -> None:
    reads: list[tuple[int, int]] = []

    class Spy(ArraySource):
        def _read_region(self, z0: int, z1: int, *yx: int) -> np.ndarray:
            reads.append((z0, z1))
            return super()._read_region(z0, z1, *yx)

    write_pyramid(Spy(_smooth((40, 32, 32))), tmp_path / "v.ome.zarr", voxel_size_nm=(1, 1, 1), chunks=(4, 16, 16))
    assert max(z1 - z0 for z0, z1 in reads) <= 4


def test_a_slice_larger_than_the_region_budget_is_read_in_tiles_and_equals_a_whole_slice_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = _smooth((3, 2500, 1900))
    whole = write_pyramid(ArraySource(vol), tmp_path / "whole.ome.zarr", voxel_size_nm=(4, 4, 4))
    boxes: list[tuple[int, ...]] = []

    class Spy(ArraySource):
        def _read_region(self, *box: int) -> np.ndarray:
            boxes.append(box)
            return super()._read_region(*box)

    monkeypatch.setattr(omezarr, "REGION_BYTES", 2**20)
    monkeypatch.setattr(omezarr, "REGION_PX", 512)
    tiled = write_pyramid(Spy(vol), tmp_path / "tiled.ome.zarr", voxel_size_nm=(4, 4, 4))

    assert max((z1 - z0) * (y1 - y0) * (x1 - x0) for z0, z1, y0, y1, x0, x1 in boxes) <= 2**20
    assert [lvl.shape for lvl in tiled.levels] == [lvl.shape for lvl in whole.levels]
    for level in range(whole.n_levels):
        a = np.asarray(open_level(tmp_path / "whole.ome.zarr", level)[:])
        b = np.asarray(open_level(tmp_path / "tiled.ome.zarr", level)[:])
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("unit", "expected"),
    [(None, (16, 1024, 1024)), ((256, 256), (16, 1024, 1024)), ((8, 40000), (1, 256, 40000)),
     ((2048, 2048), (4, 2048, 2048)), ((48, 48), (7, 1536, 1536))],
)
def test_read_regions_align_to_the_chunks_and_the_tiles_within_the_budget(
    unit: tuple[int, int] | None, expected: tuple[int, int, int]
) -> None:
    plan = omezarr.region_plan((100, 40000, 40000), unit, chunks=(16, 256, 256), itemsize=1, budget=16 * 2**20)
    assert plan == expected
    z, h, w = plan
    assert h % 256 == 0 and (w % 256 == 0 or w == 40000)
    assert z * h * w <= 16 * 2**20


# ----------------------------------------------------------------------------- labels


@pytest.fixture
def volume_path(tmp_path: Path) -> Path:
    dest = tmp_path / "v.ome.zarr"
    write_pyramid(ArraySource(_smooth((3, 1030, 600))), dest, voxel_size_nm=(10, 4, 4), chunks=(1, 256, 256))
    return dest


def test_label_layers_share_the_image_levels_and_ngff_colours(volume_path: Path) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    levels = create_label_layer(volume_path, "classes", colors={1: (255, 255, 0), 2: (255, 0, 0, 128)},
                                properties={1: {"name": "nucleus"}})
    info = read_info(volume_path)
    assert [lv.shape for lv in levels] == [lv.shape for lv in info.levels]
    assert [lv.scale_nm for lv in levels] == [lv.scale_nm for lv in info.levels]
    assert info.labels == ("classes",)
    assert open_label_level(volume_path, "classes", 0).dtype == np.uint16
    label_nodes = [n for n in Reader(parse_url(str(volume_path)))() if any(isinstance(s, Label) for s in n.specs)]
    assert len(label_nodes) == 1
    assert label_nodes[0].metadata["color"][2] == pytest.approx([1.0, 0.0, 0.0, 128 / 255])
    assert label_nodes[0].metadata["properties"][1]["name"] == "nucleus"


def test_label_layers_are_lz4_without_shuffle_and_images_bit_shuffled(volume_path: Path) -> None:
    import json

    create_label_layer(volume_path, "classes")
    label = json.loads((volume_path / "labels" / "classes" / "0" / ".zarray").read_text())["compressor"]
    image = json.loads((volume_path / "0" / ".zarray").read_text())["compressor"]
    assert (label["cname"], label["shuffle"]) == ("lz4", 0)  # a stroke's chunk encodes ~10x faster
    assert (image["cname"], image["shuffle"]) == ("lz4", 2)


def test_it_refuses_bad_or_duplicate_label_layers(volume_path: Path) -> None:
    create_label_layer(volume_path, "cells", dtype="uint32")
    with pytest.raises(ValueError, match="already exists"):
        create_label_layer(volume_path, "cells")
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="must match"):
            create_label_layer(volume_path, bad)
    with pytest.raises(ValueError, match="dtype"):
        create_label_layer(volume_path, "f", dtype="float32")
    with pytest.raises(ValueError, match="colour"):
        create_label_layer(volume_path, "c", colors={1: (300, 0, 0)})
    with pytest.raises(ValueError, match="does not exist"):
        open_label_level(volume_path, "nope", 0)
    with pytest.raises(IndexError):
        open_label_level(volume_path, "cells", 9)


def test_updating_a_region_equals_downsampling_the_whole_layer(volume_path: Path) -> None:
    create_label_layer(volume_path, "classes")
    lvl0 = open_label_level(volume_path, "classes", 0, mode="r+")
    rng = np.random.default_rng(5)
    lvl0[1, 301:517, 77:203] = rng.integers(0, 4, (216, 126), dtype=np.uint16)
    lvl0[1, 1029, 599] = 3  # the odd last row and column
    update_label_pyramid(volume_path, "classes", z=(1, 2), y=(301, 517), x=(77, 203))
    update_label_pyramid(volume_path, "classes", z=(1, 2), y=(1029, 1030), x=(599, 600))
    full = np.asarray(lvl0[:])
    for level in (1, 2):
        full = downsample_mode(full)
        np.testing.assert_array_equal(open_label_level(volume_path, "classes", level)[:], full)


def test_deleting_a_label_layer_removes_it_from_list_and_disk(volume_path: Path) -> None:
    create_label_layer(volume_path, "a")
    create_label_layer(volume_path, "b")
    delete_label_layer(volume_path, "a")
    assert read_info(volume_path).labels == ("b",)
    assert not (volume_path / "labels" / "a").exists()


def test_open_level_refuses_levels_that_do_not_exist(volume_path: Path) -> None:
    for bad in (-1, 3, True):
        with pytest.raises(IndexError):
            open_level(volume_path, bad)


def test_zarr_chunk_writes_go_through_a_temporary_file(volume_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed between writing and renaming must leave the old chunk intact."""
    create_label_layer(volume_path, "classes")
    arr = open_label_level(volume_path, "classes", 0, mode="r+")
    arr[0, :128, :128] = 1

    def killed(self: pathlib.Path, target: object) -> None:
        raise OSError("killed before rename")

    monkeypatch.setattr(pathlib.Path, "replace", killed)
    with pytest.raises(OSError, match="killed before rename"):
        arr[0, :128, :128] = 2
    monkeypatch.undo()
    fresh = zarr.open_array(str(volume_path / "labels" / "classes" / "0"), mode="r")
    assert (fresh[0, :128, :128] == 1).all()
