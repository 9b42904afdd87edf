"""Direct chunk-file writes of a label level read back through zarr exactly as zarr's own writes, and
the decoded-chunk cache under them never serves a chunk another writer replaced."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from annotations.imaging import chunkio
from annotations.imaging.chunkio import DirectChunks, ZarrRegions, region_io
from annotations.imaging.omezarr import create_label_layer, open_label_level, write_pyramid
from annotations.imaging.readers import ArraySource


@pytest.fixture
def level0(tmp_path: Path) -> zarr.Array:
    dest = tmp_path / "v.ome.zarr"
    write_pyramid(ArraySource(np.zeros((6, 300, 520), np.uint8)), dest, voxel_size_nm=(4, 4, 4))
    create_label_layer(dest, "manual", dtype="uint32")
    return open_label_level(dest, "manual", 0, mode="r+")


def test_the_project_label_format_gets_direct_chunk_access(level0: zarr.Array) -> None:
    assert isinstance(region_io(level0), DirectChunks)


def test_random_patches_written_directly_equal_the_same_patches_in_numpy(level0: zarr.Array) -> None:
    io = region_io(level0)
    expected = np.zeros(level0.shape, np.uint32)
    rng = np.random.default_rng(1)
    for _ in range(40):
        z0, y0, x0 = (int(rng.integers(0, n)) for n in level0.shape)
        z1, y1, x1 = (int(rng.integers(lo + 1, n + 1)) for lo, n in zip((z0, y0, x0), level0.shape))
        box = ((z0, min(z1, z0 + 3)), (y0, min(y1, y0 + 90)), (x0, min(x1, x0 + 90)))
        block = rng.integers(0, 2**32 - 1, tuple(hi - lo for lo, hi in box), dtype=np.uint32)
        block[block % 3 == 0] = 0
        io.write(box, block)
        expected[tuple(slice(lo, hi) for lo, hi in box)] = block
        np.testing.assert_array_equal(io.read(box), block)
    np.testing.assert_array_equal(level0[:], expected)  # zarr reads what was written, edge chunks too


def _store_dir(array: zarr.Array) -> Path:
    """The folder of a zarr array kept on disk."""
    assert isinstance(array.store, LocalStore)
    return Path(array.store.root)


def test_a_chunk_painted_back_to_zero_is_removed_as_zarr_does(level0: zarr.Array) -> None:
    io = region_io(level0)
    box = ((0, 1), (0, 8), (0, 8))
    io.write(box, np.full((1, 8, 8), 7, np.uint32))
    files = {p for p in _store_dir(level0).rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert len(files) == 1
    io.write(box, np.zeros((1, 8, 8), np.uint32))
    assert not any(p.exists() for p in files)
    assert not level0[:].any()


def test_a_box_off_the_array_or_a_misfit_block_is_refused(level0: zarr.Array) -> None:
    io = region_io(level0)
    with pytest.raises(IndexError):
        io.read(((0, 1), (0, 10), (515, 530)))
    with pytest.raises(ValueError):
        io.write(((0, 1), (0, 10), (0, 10)), np.zeros((1, 10, 9), np.uint32))


def test_other_formats_go_through_zarr(tmp_path: Path) -> None:
    array = zarr.create_array(tmp_path / "v3", shape=(2, 64, 64), chunks=(1, 32, 32), dtype="uint16", zarr_format=3)
    io = region_io(array)
    assert isinstance(io, ZarrRegions)
    io.write(((1, 2), (3, 40), (5, 6)), np.full((1, 37, 1), 9, np.uint16))
    assert int(array[1, 39, 5]) == 9 and int(array[:].sum()) == 9 * 37


def test_a_chunk_replaced_by_another_writer_is_read_fresh(level0: zarr.Array) -> None:
    io = chunkio.region_io(level0)
    box = ((0, 2), (10, 20), (10, 20))
    io.write(box, np.full((2, 10, 10), 3, np.uint32))
    assert (io.read(box) == 3).all()  # now cached
    level0[0:2, 10:20, 10:20] = 9      # zarr's own writer: what a Celery worker would do
    assert (io.read(box) == 9).all()
    io.write(((0, 1), (12, 14), (12, 14)), np.full((1, 2, 2), 5, np.uint32))  # read-modify-write sees the 9s
    expected = np.full((2, 10, 10), 9, np.uint32)
    expected[0, 2:4, 2:4] = 5
    np.testing.assert_array_equal(np.asarray(level0[0:2, 10:20, 10:20]), expected)


def test_cached_chunks_are_read_only_and_writers_do_not_change_what_readers_hold(level0: zarr.Array) -> None:
    io = chunkio.region_io(level0)
    box = ((0, 1), (0, 5), (0, 5))
    io.write(box, np.full((1, 5, 5), 2, np.uint32))
    held = io.read(box)
    io.write(box, np.full((1, 5, 5), 4, np.uint32))
    assert (held == 2).all() and (io.read(box) == 4).all()
    path = next(p for p in _store_dir(level0).rglob("*") if p.is_file() and not p.name.startswith("."))
    cached = chunkio.chunk_cache.get(str(path), path.read_bytes())
    assert cached is not None and not cached.flags.writeable


def test_the_cache_stays_within_its_budget() -> None:
    cache = chunkio.ChunkCache(budget=3 * (1000 + 10))
    for i in range(10):
        cache.put(f"chunk{i}", bytes(10) + bytes([i]), np.zeros(1000, np.uint8))
    assert cache._bytes <= cache.budget
    assert cache.get("chunk9", bytes(10) + bytes([9])) is not None and cache.get("chunk0", bytes(11)) is None
    assert cache.get("chunk9", bytes(11)) is None  # other bytes: not served
