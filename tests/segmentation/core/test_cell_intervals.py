from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import zarr

from segmentation.core.cell_intervals import (
    fuse_interval,
    key_intervals,
    segment_cells_by_intervals,
    stitch,
)
from segmentation.core.cells import segment_cells
from segmentation.core.phantom import key_slices, make_phantom


@pytest.fixture(scope="module")
def holed_phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, an interior with holes along every thin protrusion, and keys on slices 0, 12, 23."""
    ph = make_phantom((24, 128, 128), seed=1, n_cells=5, protrusion_radius=0.5)
    interior = ph.interior.copy()
    for i in range(1, len(ph.protrusions) + 1):
        tube = np.argwhere(ph.protrusion_ids == i)
        interior[tuple(tube[len(tube) // 3 :: 7].T)] = False
    keys = key_slices(ph.cells, every=12)
    keys[23] = ph.cells[23]
    return ph.image, interior, keys


def test_it_cuts_the_volume_at_every_key_slice() -> None:
    got = [(i.start, i.stop, i.below, i.above) for i in key_intervals(30, [0, 12, 23])]
    assert got == [(0, 12, 0, 12), (12, 23, 12, 23), (23, 30, 23, None)]
    assert [(i.start, i.stop) for i in key_intervals(9, [4])] == [(0, 4), (4, 9)]


def test_it_equals_the_whole_volume_fusion_interval_by_interval(
    holed_phantom: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    image, interior, keys = holed_phantom
    whole = segment_cells(image, interior, keys)
    assert whole.tracked_regions > 0  # the stitch has protrusion pieces to place
    stored = zarr.create_array(store={}, shape=image.shape, chunks=(1, 128, 128), dtype="uint8")
    stored[:] = image
    out = zarr.create_array(store={}, shape=image.shape, chunks=(1, 64, 64), dtype="uint32")
    res = segment_cells_by_intervals(stored, interior, keys, out)
    np.testing.assert_array_equal(out[:], whole.cells)
    assert res.tracked_regions == whole.tracked_regions
    assert res.unresolved == whole.unresolved


def test_it_runs_intervals_in_any_order_and_reads_only_their_slices(
    holed_phantom: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    image, interior, keys = holed_phantom
    whole = segment_cells(image, interior, keys).cells

    class Reads:
        def __init__(self, a: np.ndarray) -> None:
            self.a, self.shape = a, a.shape
            self.seen: set[int] = set()

        def __getitem__(self, z: int) -> np.ndarray:
            self.seen.add(z)
            return self.a[z]

    out = np.zeros(image.shape, np.uint32)
    top = 0
    for interval in reversed(key_intervals(image.shape[0], [0, 12, 23])):
        img = Reads(image)
        top = max(top, fuse_interval(img, interior, keys, interval, out.__setitem__))
        hi = interval.stop if interval.above is None else interval.above
        assert img.seen == set(range(interval.start, hi + (interval.above is not None)))
    stitch(out, interior, first_new_id=top + 1)
    np.testing.assert_array_equal(out, whole)


def test_it_stitches_reading_a_slice_or_a_small_box_at_a_time(
    holed_phantom: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    image, interior, keys = holed_phantom
    whole = segment_cells(image, interior, keys).cells

    class Recorder:
        """The fused ids, recording how many slices each read or write spans."""

        def __init__(self, a: np.ndarray) -> None:
            self.a, self.shape = a, a.shape
            self.spans: list[int] = []

        def _span(self, i: Any) -> int:
            z = i[0] if isinstance(i, tuple) else i
            return len(range(*z.indices(self.shape[0]))) if isinstance(z, slice) else 1

        def __getitem__(self, i: Any) -> np.ndarray:
            self.spans.append(self._span(i))
            return self.a[i]

        def __setitem__(self, i: Any, v: np.ndarray) -> None:
            self.spans.append(self._span(i))
            self.a[i] = v

    out = np.zeros(image.shape, np.uint32)
    top = 0
    for interval in key_intervals(image.shape[0], [0, 12, 23]):
        top = max(top, fuse_interval(image, interior, keys, interval, out.__setitem__))
    rec = Recorder(out)
    res = stitch(rec, interior, first_new_id=top + 1)
    np.testing.assert_array_equal(out, whole)
    assert res.tracked_regions > 0
    assert max(rec.spans) <= 16 < image.shape[0]  # a protrusion piece with its margin, never the volume
