from __future__ import annotations

import os
import threading
from pathlib import Path

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.imaging.readers import ArraySource, Limits, natural_sort_key, open_source
from annotations.imaging.readers import tiff as tiff_reader


def _read_all(path: Path, **kwargs: object) -> tuple[np.ndarray, object]:
    with open_source(path, **kwargs) as src:
        return src.read(0, src.shape[0]), src.voxel_size_nm


# ----------------------------------------------------------------------------- round trips


def test_it_reads_a_multipage_imagej_tiff_with_its_voxel_size(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume, imagej=True, resolution=(1 / 0.004, 1 / 0.005),
                     metadata={"spacing": 0.03, "unit": "um", "axes": "ZYX"})
    with open_source(path) as src:
        assert src.format == "tiff" and src.shape == volume.shape and src.dtype == np.uint8
        assert src.voxel_size_nm == pytest.approx((30.0, 5.0, 4.0))
        np.testing.assert_array_equal(src.read(1, 4), volume[1:4])


def test_it_reads_an_ome_tiff_with_physical_sizes_in_micrometres(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "stack.ome.tif"
    data = volume.astype(np.uint16) * 200
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX", "PhysicalSizeZ": 0.01,
                                                    "PhysicalSizeY": 0.004, "PhysicalSizeX": 0.004})
    got, voxel = _read_all(path)
    np.testing.assert_array_equal(got, data)
    assert voxel == pytest.approx((10.0, 4.0, 4.0))


def test_it_reads_a_compressed_tiff_without_metadata_as_unknown_voxel_size(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume.astype(np.int16) - 100, compression="zlib")
    got, voxel = _read_all(path)
    np.testing.assert_array_equal(got, volume.astype(np.int16) - 100)
    assert voxel is None


def test_it_reads_a_2d_tiff_as_one_slice(tmp_path: Path, volume: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "one.tif", volume[2])
    got, _ = _read_all(tmp_path / "one.tif")
    assert got.shape == (1, *volume.shape[1:])
    np.testing.assert_array_equal(got[0], volume[2])


def test_it_reads_a_folder_of_tiff_slices_in_natural_order(tmp_path: Path, volume: np.ndarray) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(volume.shape[0]):  # names sort wrongly as plain strings: 0, 10, 20, 30, 40 vs 5..
        tifffile.imwrite(folder / f"slice_{z * 10 if z else 5}.tif", volume[z])
    (folder / "README.txt").write_text("ignored")
    with open_source(folder) as src:
        assert src.format == "tiff-folder" and src.shape == volume.shape
        np.testing.assert_array_equal(src.read(0, 5), volume)


def test_natural_sort_orders_numbers_by_value() -> None:
    names = ["s10.tif", "s2.tif", "s1.tif"]
    assert sorted(names, key=natural_sort_key) == ["s1.tif", "s2.tif", "s10.tif"]


def test_it_reads_an_hdf5_dataset_with_cremi_resolution(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "vol.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("volumes/raw", data=volume, chunks=(1, 16, 16), compression="gzip")
        d.attrs["resolution"] = [40.0, 4.0, 4.0]
    got, voxel = _read_all(path)
    np.testing.assert_array_equal(got, volume)
    assert voxel == (40.0, 4.0, 4.0)


def test_it_reads_a_contiguous_hdf5_dataset_with_fiji_element_size(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "vol.hdf5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=volume.astype(np.float32)[None, :, :, :, None])
        d.attrs["element_size_um"] = [0.05, 0.004, 0.004]
    got, voxel = _read_all(path)
    np.testing.assert_array_equal(got, volume.astype(np.float32))
    assert voxel == pytest.approx((50.0, 4.0, 4.0))


def test_it_requires_a_dataset_name_when_hdf5_holds_several(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = volume
        f["labels"] = volume
    with pytest.raises(ValueError, match="several datasets.*labels.*raw"):
        open_source(path)
    got, _ = _read_all(path, dataset="labels")
    np.testing.assert_array_equal(got, volume)
    with pytest.raises(ValueError, match="does not exist"):
        open_source(path, dataset="nope")


def test_it_reads_mrc_with_voxel_size_converted_from_angstrom(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "tomo.mrc"
    with mrcfile.new(path) as m:
        m.set_data(volume.astype(np.int16))
        m.voxel_size = (40.0, 41.0, 120.0)  # x, y, z in Å
    got, voxel = _read_all(path)
    np.testing.assert_array_equal(got, volume.astype(np.int16))
    assert voxel == pytest.approx((12.0, 4.1, 4.0))


def test_it_reads_a_plain_zarr_array(tmp_path: Path, volume: np.ndarray) -> None:
    arr = zarr.create_array(str(tmp_path / "v.zarr"), shape=volume.shape, chunks=(2, 16, 16), dtype="uint16")
    arr[:] = volume
    got, voxel = _read_all(tmp_path / "v.zarr")
    np.testing.assert_array_equal(got, volume)
    assert voxel is None


def test_it_reads_level_zero_and_voxel_size_of_an_ome_zarr(tmp_path: Path, volume: np.ndarray) -> None:
    from annotations.imaging.omezarr import write_pyramid

    write_pyramid(ArraySource(volume), tmp_path / "v.ome.zarr", voxel_size_nm=(30, 5, 5))
    with open_source(tmp_path / "v.ome.zarr") as src:
        assert src.format == "ome-zarr" and src.voxel_size_nm == (30.0, 5.0, 5.0)
        np.testing.assert_array_equal(src.read(0, 5), volume)


def test_it_reads_the_shared_real_em_tiff_lazily() -> None:
    path = Path(__file__).resolve().parents[4] / "shared" / "data" / "hela_sbfsem" / "image.tif"
    if not path.exists():
        pytest.skip("shared data not present")
    with open_source(path) as src:
        assert src.shape == (3, 2000, 2000) and src.dtype == np.uint8
        assert src.read(1, 2).shape == (1, 2000, 2000)


def test_it_refuses_reads_outside_the_volume_and_after_close(volume: np.ndarray) -> None:
    src = ArraySource(volume)
    with pytest.raises(IndexError):
        src.read(3, 9)
    with pytest.raises(IndexError):
        src.read(2, 2)
    src.close()
    with pytest.raises(ValueError, match="closed"):
        src.read(0, 1)


# ----------------------------------------------------------------------------- hostile input


def test_it_refuses_unsupported_voxel_types(tmp_path: Path, volume: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "f64.tif", volume.astype(np.float64))
    with h5py.File(tmp_path / "i32.h5", "w") as f:
        f["raw"] = volume.astype(np.int32)
    with pytest.raises(ValueError, match="float64 is not supported"):
        open_source(tmp_path / "f64.tif")
    with pytest.raises(ValueError, match="int32 is not supported"):
        open_source(tmp_path / "i32.h5")


def test_it_refuses_rgb_and_extra_stack_axes(tmp_path: Path, volume: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([volume[0]] * 3, axis=-1), photometric="rgb")
    with h5py.File(tmp_path / "4d.h5", "w") as f:
        f["raw"] = np.zeros((2, 3, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="RGB"):
        open_source(tmp_path / "rgb.tif")
    with pytest.raises(ValueError, match="more than 3 non-singleton axes"):
        open_source(tmp_path / "4d.h5")


def test_it_refuses_a_corrupt_tiff_header(tmp_path: Path) -> None:
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(ValueError, match="bad.tif"):
        open_source(tmp_path / "bad.tif")


def test_it_refuses_a_truncated_tiff(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, volume)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated|cannot open|readable"):
        open_source(path)


def test_it_reports_corrupt_compressed_strips_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.tif"
    smooth = np.tile(np.arange(64, dtype=np.uint8), (4, 64, 1))
    tifffile.imwrite(path, smooth, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[2].dataoffsets[0]
        count = tif.pages[2].databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + count] = b"\x00" * count
    path.write_bytes(bytes(raw))
    with open_source(path) as src:
        np.testing.assert_array_equal(src.read(0, 2), smooth[:2])
        with pytest.raises(ValueError, match="slices 2..2"):
            src.read(2, 3)


def test_it_refuses_dimensions_beyond_the_limits(tmp_path: Path, volume: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "v.tif", volume)
    with pytest.raises(ValueError, match="dimension x=43 exceeds the limit of 40"):
        open_source(tmp_path / "v.tif", limits=Limits(max_dimension=40))
    with pytest.raises(ValueError, match="voxels, more than the limit"):
        open_source(tmp_path / "v.tif", limits=Limits(max_voxels=1000))


def test_it_refuses_a_tiff_decompression_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((4, 1024, 1024), np.uint8), compression="zlib", photometric="minisblack")
    assert path.stat().st_size < 4 * 2**20 / 100
    with pytest.raises(ValueError, match="decompression bomb"):
        open_source(path, limits=Limits(max_compression_ratio=100))


def test_it_refuses_an_hdf5_that_declares_a_huge_volume_without_data(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "sparse.h5", "w") as f:
        f.create_dataset("raw", shape=(4096, 4096, 4096), dtype="uint8", chunks=(1, 256, 256), compression="gzip")
    with pytest.raises(ValueError, match="decompression bomb|sparse"):
        open_source(tmp_path / "sparse.h5")


def test_it_refuses_a_zarr_whose_missing_chunks_would_be_synthesised(tmp_path: Path) -> None:
    zarr.create_array(str(tmp_path / "empty.zarr"), shape=(2000, 4096, 4096), chunks=(1, 512, 512), dtype="uint8")
    with pytest.raises(ValueError, match="decompression bomb|sparse"):
        open_source(tmp_path / "empty.zarr")


def test_it_refuses_an_mrc_whose_data_is_truncated(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "cut.mrc"
    with mrcfile.new(path) as m:
        m.set_data(volume.astype(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 500])
    with pytest.raises(ValueError, match="cut.mrc"):
        open_source(path)


def test_it_refuses_an_mrc_header_declaring_huge_dimensions(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "huge.mrc"
    with mrcfile.new(path) as m:
        m.set_data(volume.astype(np.float32))
    raw = bytearray(path.read_bytes())
    raw[0:12] = np.array([100000, 100000, 100000], "<i4").tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="exceeds the limit"):
        open_source(path)


def test_it_refuses_hdf5_external_links(tmp_path: Path, volume: np.ndarray) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["raw"] = volume
    with h5py.File(tmp_path / "main.h5", "w") as f:
        f["raw"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "raw")
    with pytest.raises(ValueError, match="external link"):
        open_source(tmp_path / "main.h5", dataset="raw")


def test_it_refuses_n5_containers_clearly(tmp_path: Path) -> None:
    (tmp_path / "v.n5").mkdir()
    (tmp_path / "v.n5" / "attributes.json").write_text('{"n5": "2.0.0"}')
    with pytest.raises(ValueError, match="N5"):
        open_source(tmp_path / "v.n5")


def test_it_refuses_unknown_formats(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"hello world" * 100)
    with pytest.raises(ValueError, match="unknown or unsupported"):
        open_source(tmp_path / "x.bin")


def test_it_refuses_sources_outside_the_root(tmp_path: Path, volume: np.ndarray) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tifffile.imwrite(tmp_path / "outside.tif", volume)
    with pytest.raises(ValueError, match="outside the data root"):
        open_source(Path("../outside.tif"), root=root)


def test_it_refuses_tiff_slices_that_link_out_of_the_root(tmp_path: Path, volume: np.ndarray) -> None:
    root = tmp_path / "root"
    (root / "slices").mkdir(parents=True)
    tifffile.imwrite(root / "slices" / "s0.tif", volume[0])
    tifffile.imwrite(tmp_path / "private.tif", volume[1])
    os.symlink(tmp_path / "private.tif", root / "slices" / "s1.tif")
    with pytest.raises(ValueError, match="links outside the data root"):
        open_source(Path("slices"), root=root)


def test_it_refuses_slices_of_different_shapes(tmp_path: Path, volume: np.ndarray) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s0.tif", volume[0])
    tifffile.imwrite(folder / "s1.tif", volume[1, :20])
    with pytest.raises(ValueError, match="s1.tif: slice is 20x43"):
        open_source(folder)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_it_turns_any_damage_to_a_tiff_into_a_clean_error_or_a_correct_shape(tmp_path: Path, data: st.DataObject) -> None:
    vol = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16)
    path = tmp_path / "fuzz.tif"
    tifffile.imwrite(path, vol, compression=data.draw(st.sampled_from([None, "zlib"])), photometric="minisblack")
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path.write_bytes(bytes(raw))
    try:
        src = open_source(path, limits=Limits(max_voxels=10**7, max_dimension=4096))
    except ValueError:
        return
    with src:
        assert len(src.shape) == 3 and src.dtype in (np.uint8, np.uint16, np.int16, np.float32)
        try:
            out = src.read(0, src.shape[0])
        except ValueError:
            return
        assert out.shape == src.shape


# ----------------------------------------------------------------------------- regions and big pages


@pytest.mark.parametrize("layout", [{"tile": (64, 64), "compression": "zlib"},
                                    {"rowsperstrip": 8, "compression": "zlib"},
                                    {"contiguous": True}])
def test_a_region_read_equals_the_same_box_of_the_whole_volume(tmp_path: Path, layout: dict[str, object]) -> None:
    vol = np.random.default_rng(1).integers(0, 255, (5, 300, 200), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, vol, photometric="minisblack", **layout)
    with open_source(path) as src:
        np.testing.assert_array_equal(src.read_region(1, 4, 70, 201, 33, 150), vol[1:4, 70:201, 33:150])
        with pytest.raises(IndexError, match="Y range"):
            src.read_region(0, 1, 250, 301, 0, 10)


@pytest.mark.parametrize(("dtype", "layout"), [
    ("uint8", {"tile": (64, 48), "compression": "zlib"}),  # edge tiles padded in the file
    ("uint16", {"rowsperstrip": 7, "compression": "zlib", "predictor": True, "byteorder": ">"}),
    ("int16", {"tile": (32, 32), "compression": "lzw", "ome": True, "metadata": {"axes": "ZYX"}}),
    ("float32", {"rowsperstrip": 13, "compression": "zlib"}),
])
def test_random_boxes_read_tile_by_tile_equal_the_whole_decoded_volume(
    tmp_path: Path, dtype: str, layout: dict[str, object]
) -> None:
    rng = np.random.default_rng(2)
    vol = rng.integers(-100 if dtype in ("int16", "float32") else 0, 1000, (4, 150, 170)).astype(dtype)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, vol, photometric="minisblack", **layout)
    with open_source(path) as src:
        assert src.dtype == np.dtype(dtype)
        for _ in range(30):
            z0, y0, x0 = int(rng.integers(0, 4)), int(rng.integers(0, 150)), int(rng.integers(0, 170))
            z1, y1, x1 = int(rng.integers(z0 + 1, 5)), int(rng.integers(y0 + 1, 151)), int(rng.integers(x0 + 1, 171))
            np.testing.assert_array_equal(src.read_region(z0, z1, y0, y1, x0, x1), vol[z0:z1, y0:y1, x0:x1])


def test_a_regions_tiles_decode_on_two_threads_into_the_bytes_one_thread_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = np.random.default_rng(3).integers(0, 4000, (3, 300, 260)).astype(np.uint16)
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, vol, photometric="minisblack", tile=(64, 64), compression="zlib", predictor=True)
    names: list[str] = []
    with open_source(path) as src:
        direct = src._direct  # type: ignore[attr-defined]
        assert direct is not None
        decode = direct._decode

        def spy(data: bytes | None, index: int) -> object:
            names.append(threading.current_thread().name)
            return decode(data, index)

        direct._decode = spy
        monkeypatch.setattr(tiff_reader, "DECODE_THREADS", 2)
        two = src.read_region(0, 3, 10, 290, 5, 250)
        threaded, names[:] = set(names), []
        monkeypatch.setattr(tiff_reader, "DECODE_THREADS", 1)
        one = src.read_region(0, 3, 10, 290, 5, 250)
    assert all(n.startswith("tiff-decode") for n in threaded) and len(threaded) <= 2
    assert set(names) == {threading.current_thread().name}  # one thread: decoded where it is read
    np.testing.assert_array_equal(two, vol[:, 10:290, 5:250])
    np.testing.assert_array_equal(one, two)


def test_a_tiled_tiff_reports_its_tile_as_the_read_unit(tmp_path: Path) -> None:
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, np.zeros((2, 256, 512), np.uint8) + 7, tile=(128, 256), compression="zlib",
                     photometric="minisblack")
    with open_source(path) as src:
        assert src.read_unit_yx == (128, 256)


def test_a_strip_larger_than_the_chunk_limit_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "one-strip.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 4, (1, 512, 512), dtype=np.uint8),
                     rowsperstrip=512, compression="zlib", photometric="minisblack")
    with pytest.raises(ValueError, match="one stored tile or strip decodes to .* over the limit"):
        open_source(path, limits=Limits(max_chunk_bytes=64 * 1024))


def test_a_tiff_with_several_images_says_which_it_imports(tmp_path: Path) -> None:
    path = tmp_path / "four.tif"
    with tifffile.TiffWriter(path) as tw:
        for side in (64, 32, 48, 16):
            tw.write(np.full((2, side, side), side, np.uint8), photometric="minisblack")
    with open_source(path) as src:
        assert src.shape == (2, 64, 64)
        assert src.metadata["series"] == {"imported": 0, "count": 4,
                                          "shapes": [[2, 64, 64], [2, 32, 32], [2, 48, 48], [2, 16, 16]]}
        assert "holds 4 images; imported image 0" in src.metadata["notice"]
    with open_source(path, dataset="2") as src:
        assert src.shape == (2, 48, 48) and src.metadata["series"]["imported"] == 2
        assert int(src.read(0, 1)[0, 0, 0]) == 48


def test_a_folder_of_tiled_slices_is_read_by_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = np.random.default_rng(2).integers(0, 255, (3, 200, 260), dtype=np.uint8)
    folder = tmp_path / "slices"
    folder.mkdir()
    for i, plane in enumerate(vol):
        tifffile.imwrite(folder / f"s{i}.tif", plane, tile=(64, 64), compression="zlib")
    with open_source(folder) as src:
        assert src.read_unit_yx == (64, 64)
        opened = []
        real = tiff_reader.TiffSource

        def counting(path: Path, **kwargs: object) -> object:
            opened.append(path.name)
            return real(path, **kwargs)

        monkeypatch.setattr(tiff_reader, "TiffSource", counting)
        np.testing.assert_array_equal(src.read_region(0, 3, 10, 150, 100, 260), vol[:, 10:150, 100:260])
        np.testing.assert_array_equal(src.read_region(0, 3, 150, 200, 0, 100), vol[:, 150:200, 0:100])
        assert sorted(opened) == ["s0.tif", "s1.tif", "s2.tif"]  # each slice file opened once for both regions


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "mrc"])
def test_other_formats_read_regions_and_report_their_chunks(tmp_path: Path, fmt: str) -> None:
    vol = np.random.default_rng(3).integers(0, 255, (4, 96, 80), dtype=np.uint8)
    if fmt == "hdf5":
        path = tmp_path / "v.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("raw", data=vol, chunks=(2, 32, 16))
        unit: tuple[int, int] | None = (32, 16)
    elif fmt == "zarr":
        path = tmp_path / "v.zarr"
        arr = zarr.create_array(str(path), shape=vol.shape, chunks=(2, 48, 40), dtype=vol.dtype)
        arr[:] = vol
        unit = (48, 40)
    else:
        path = tmp_path / "v.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(vol)
        unit = None
    with open_source(path) as src:
        assert src.read_unit_yx == unit
        np.testing.assert_array_equal(src.read_region(1, 3, 5, 90, 7, 71), vol[1:3, 5:90, 7:71])


def test_label_files_may_hold_wide_integers_that_images_may_not(tmp_path: Path) -> None:
    from annotations.imaging.validation import LABEL_DTYPES

    path = tmp_path / "cells.tif"
    ids = np.arange(2 * 8 * 8, dtype=np.uint32).reshape(2, 8, 8) * 100_000
    tifffile.imwrite(path, ids, photometric="minisblack")
    with pytest.raises(ValueError, match="voxel type uint32 is not supported"):
        open_source(path)
    with open_source(path, limits=Limits(dtypes=LABEL_DTYPES)) as src:
        np.testing.assert_array_equal(src.read(0, 2), ids)
