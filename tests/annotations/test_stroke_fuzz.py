"""Hostile stroke payloads: whatever arrives, the answer is a clear refusal or a stroke, never a crash."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations import raster
from annotations.imaging import omezarr
from annotations.models import Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import stroke_apply
from emportal.errors import ApplicationError
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                    st.none(), st.booleans())
points = st.one_of(st.lists(st.lists(numbers, min_size=0, max_size=3), max_size=6), numbers,
                   st.dictionaries(st.text(max_size=3), numbers, max_size=2))
payloads = st.fixed_dictionaries({}, optional={
    "uuid": st.one_of(st.uuids().map(str), st.text(max_size=40), numbers),
    "layer": st.one_of(st.sampled_from(["manual", "cells", "prediction", "../etc"]), numbers),
    "axis": st.one_of(st.sampled_from(["z", "y", "x", "w", ""]), numbers),
    "index": numbers, "points": points, "radius": numbers, "value": numbers,
    "mode": st.one_of(st.sampled_from(["paint", "erase", "fill", "polygon", "replace", "explode"]), numbers),
})


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path, data=np.zeros((3, 40, 50), np.uint8))


def test_random_payloads_are_refused_cleanly_or_applied_inside_the_volume(cast: Any, volume: Any) -> None:
    level0 = omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=payloads)
    def check(payload: dict[str, Any]) -> None:
        before = np.asarray(level0[:]).copy()
        strokes_before = Stroke.objects.count()
        try:
            stroke_apply(volume, cast.annotator, Role.ANNOTATOR, payload)
        except ApplicationError as exc:
            assert exc.message and 400 <= exc.status_code < 500
            assert np.array_equal(np.asarray(level0[:]), before)
            assert Stroke.objects.count() == strokes_before
        else:
            assert Stroke.objects.count() in (strokes_before, strokes_before + 1)

    check()


@given(r=st.floats(allow_nan=True, allow_infinity=True), c=st.floats(allow_nan=True, allow_infinity=True),
       radius=st.floats(allow_nan=True, allow_infinity=True))
def test_gesture_validation_accepts_exactly_the_finite_points_on_the_plane(r: float, c: float, radius: float) -> None:
    gesture = raster.Gesture(axis="z", index=0, points=((r, c),), radius=radius, mode="paint")
    inside = all(math.isfinite(v) for v in (r, c, radius)) and 0 <= r < 40 and 0 <= c < 50 and 0.5 <= radius <= 512
    if inside:
        gesture.validate((3, 40, 50))
        (r0, r1), (c0, c1), mask = raster.gesture_mask(gesture, (3, 40, 50))
        assert mask.any() and 0 <= r0 < r1 <= 40 and 0 <= c0 < c1 <= 50
    else:
        with pytest.raises(ValueError):
            gesture.validate((3, 40, 50))
