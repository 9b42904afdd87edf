"""The normalisation's percentiles come from whole chunks of a zarr volume, a bounded number of
them, and agree with the percentiles of the whole volume."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from segmentation.core.modelfile import Normalization
from tests.conftest import SHARED_DATA

DATA_SETS = ["cdeep3m_sbem_mito", "drosophila_vnc_sstem", "hela_sbfsem"]


class _Reads:
    """A zarr array that records the boxes read from it."""

    def __init__(self, array: zarr.Array) -> None:
        self.array, self.shape, self.chunks = array, array.shape, array.chunks
        self.boxes: list[tuple[slice, ...]] = []

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        self.boxes.append(key)
        return np.asarray(self.array[key])


def _as_zarr(path: Path, volume: np.ndarray, chunks: tuple[int, int, int]) -> zarr.Array:
    array = zarr.create_array(path, shape=volume.shape, chunks=chunks, dtype=volume.dtype, zarr_format=2)
    array[:] = volume
    return array


@pytest.mark.parametrize("name", DATA_SETS)
def test_percentiles_from_chunks_agree_with_the_whole_volume(tmp_path: Path, name: str) -> None:
    path = SHARED_DATA / name / "image.tif"
    if not path.exists():
        pytest.skip("shared data not present")
    volume = tifffile.imread(path)
    # Small chunks, so the volume has many more than the 64 read and the sample is a real one.
    array = _as_zarr(tmp_path / "v.zarr", volume, (2, 128, 128))
    norm = Normalization.measure(array)
    lo, hi = np.percentile(volume, [1.0, 99.0])
    span = float(hi - lo)
    assert abs(norm.lo - lo) <= 0.02 * span and abs(norm.hi - hi) <= 0.02 * span, (norm, lo, hi)  # measured: <= 0.01


def test_only_whole_chunks_are_read_and_at_most_the_bound(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).integers(0, 255, (40, 600, 700), dtype=np.uint8)
    reads = _Reads(_as_zarr(tmp_path / "v.zarr", volume, (4, 64, 64)))
    Normalization.measure(reads, max_chunks=20)
    assert 10 <= len(reads.boxes) <= 20
    for box in reads.boxes:
        for s, c, n in zip(box, reads.chunks, reads.shape):
            assert s.start % c == 0 and (s.stop - s.start == c or s.stop == n)
    assert len({box[0].start for box in reads.boxes}) >= 5  # spread over Z, not one slab


def test_a_numpy_volume_is_sampled_by_strided_slices_as_before() -> None:
    volume = np.arange(10 * 50 * 40, dtype=np.float32).reshape(10, 50, 40)
    norm = Normalization.measure(volume)
    lo, hi = np.percentile(volume, [1.0, 99.0])
    assert norm.lo == pytest.approx(lo, rel=0.02) and norm.hi == pytest.approx(hi, rel=0.02)
