"""Stroke geometry: the voxels a gesture covers."""
from __future__ import annotations

import numpy as np
import pytest

from annotations import raster


def _mask(points, radius=2.0, mode="paint", axis="z", shape=(4, 50, 60)):
    g = raster.Gesture(axis=axis, index=1, points=tuple(points), radius=radius, mode=mode)
    g.validate(shape)
    (r0, r1), (c0, c1), m = raster.gesture_mask(g, shape)
    out = np.zeros(raster.plane_shape(shape, axis), bool)
    out[r0:r1, c0:c1] = m
    return out


def test_a_dot_is_a_disc_of_the_radius() -> None:
    m = _mask([(20, 30)], radius=3)
    rr, cc = np.nonzero(m)
    assert m[20, 30] and np.all((rr - 20) ** 2 + (cc - 30) ** 2 <= 3.5 ** 2)
    assert m.sum() == pytest.approx(np.pi * 9, rel=0.35)


def test_a_line_covers_everything_between_its_ends_and_nothing_far_away() -> None:
    m = _mask([(10, 10), (10, 40)], radius=2)
    assert m[10, 10:41].all() and m[8:13, 25].all()
    assert not m[14:, :].any() and not m[:, 44:].any()


def test_a_polygon_fills_its_inside() -> None:
    m = _mask([(5, 5), (5, 25), (25, 25), (25, 5)], mode="polygon")
    assert m[6:25, 6:25].all() and m.sum() == 21 * 21


def test_fill_takes_the_connected_region_of_equal_value() -> None:
    plane = np.zeros((20, 20), np.uint16)
    plane[:, 10] = 3  # a wall
    (r0, r1), (c0, c1), m = raster.fill_mask(plane, (5, 2))
    assert (r0, r1, c0, c1) == (0, 20, 0, 10) and m.all()


@pytest.mark.parametrize("points,radius,message", [
    ([(60, 10)], 2, "off the"), ([(float("nan"), 1)], 2, "off the"), ([(1, 1)], 1e9, "radius"),
    ([(1, 1)] * (raster.MAX_POINTS + 1), 2, "more than"), ([], 2, "at least one"),
])
def test_absurd_gestures_are_refused_with_a_reason(points, radius, message) -> None:
    with pytest.raises(ValueError, match=message):
        raster.Gesture(axis="z", index=0, points=tuple(points), radius=radius, mode="paint").validate((4, 50, 60))


@pytest.mark.parametrize("axis", ["z", "y", "x"])
def test_planes_round_trip_through_3d_blocks(axis: str) -> None:
    plane = np.arange(12).reshape(3, 4)
    assert np.array_equal(raster.to_plane(raster.from_plane(plane, axis), axis), plane)


def test_masks_and_arrays_survive_packing() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((3, 7, 11)) > 0.5
    arr = rng.integers(0, 60000, (3, 7, 11)).astype(np.uint16)
    assert np.array_equal(raster.unpack_mask(raster.pack_mask(mask), mask.shape), mask)
    assert np.array_equal(raster.unpack_array(raster.pack_array(arr), arr.shape, arr.dtype), arr)
