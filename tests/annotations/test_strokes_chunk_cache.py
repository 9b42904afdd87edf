"""The decoded-chunk cache under the stroke path never serves a chunk another writer replaced."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from annotations.imaging import chunkio
from annotations.imaging.omezarr import create_label_layer, open_label_level, write_pyramid
from annotations.imaging.readers import ArraySource


@pytest.fixture
def level0(tmp_path: Path) -> zarr.Array:
    dest = tmp_path / "v.ome.zarr"
    write_pyramid(ArraySource(np.zeros((4, 300, 300), np.uint8)), dest, voxel_size_nm=(4, 4, 4))
    create_label_layer(dest, "manual", dtype="uint16")
    return open_label_level(dest, "manual", 0, mode="r+")


def test_a_chunk_replaced_by_another_writer_is_read_fresh(level0: zarr.Array) -> None:
    io = chunkio.region_io(level0)
    box = ((0, 2), (10, 20), (10, 20))
    io.write(box, np.full((2, 10, 10), 3, np.uint16))
    assert (io.read(box) == 3).all()  # now cached
    level0[0:2, 10:20, 10:20] = 9      # zarr's own writer: what a Celery worker would do
    assert (io.read(box) == 9).all()
    io.write(((0, 1), (12, 14), (12, 14)), np.full((1, 2, 2), 5, np.uint16))  # read-modify-write sees the 9s
    expected = np.full((2, 10, 10), 9, np.uint16)
    expected[0, 2:4, 2:4] = 5
    np.testing.assert_array_equal(np.asarray(level0[0:2, 10:20, 10:20]), expected)


def test_cached_chunks_are_read_only_and_writers_do_not_change_what_readers_hold(level0: zarr.Array) -> None:
    io = chunkio.region_io(level0)
    box = ((0, 1), (0, 5), (0, 5))
    io.write(box, np.full((1, 5, 5), 2, np.uint16))
    held = io.read(box)
    io.write(box, np.full((1, 5, 5), 4, np.uint16))
    assert (held == 2).all() and (io.read(box) == 4).all()
    path = next(p for p in Path(level0.store.root).rglob("*") if p.is_file() and not p.name.startswith("."))
    cached = chunkio.chunk_cache.get(str(path), path.read_bytes())
    assert cached is not None and not cached.flags.writeable


def test_the_cache_stays_within_its_budget() -> None:
    cache = chunkio.ChunkCache(budget=3 * (1000 + 10))
    for i in range(10):
        cache.put(f"chunk{i}", bytes(10) + bytes([i]), np.zeros(1000, np.uint8))
    assert cache._bytes <= cache.budget
    assert cache.get("chunk9", bytes(10) + bytes([9])) is not None and cache.get("chunk0", bytes(11)) is None
    assert cache.get("chunk9", bytes(11)) is None  # other bytes: not served
