"""Strokes are applied exactly, logged, undone exactly and replay bit for bit."""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.imaging import omezarr
from annotations.models import Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay, stroke_apply, stroke_redo, stroke_undo
from emportal.errors import ApplicationError
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

SHAPE = (6, 64, 80)


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8))


def _value(cast: Any, name: str) -> int:
    return cast.project.label_classes.get(name=name).value


def _layer(volume: Any) -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])


def _stroke(volume: Any, user: Any, *, value: int, points: list, axis: str = "z", index: int = 2,
            radius: float = 3, mode: str = "paint", role: Role = Role.ANNOTATOR) -> Any:
    return stroke_apply(volume, user, role, {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": axis,
                                             "index": index, "points": points, "radius": radius, "value": value,
                                             "mode": mode})


def test_a_stroke_paints_its_class_and_bumps_the_version(cast: Any, volume: Any) -> None:
    nucleus = _value(cast, "nucleus")
    outcome = _stroke(volume, cast.annotator, value=nucleus, points=[[20, 20], [20, 50]])
    layer = _layer(volume)
    assert layer[2, 20, 20:51].tolist() == [nucleus] * 31
    assert set(np.unique(layer[[0, 1, 3, 4, 5]])) == {0}
    assert outcome.version == volume.layers.get(name="manual").version


def test_a_repeated_uuid_is_applied_once(cast: Any, volume: Any) -> None:
    payload = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 1, "points": [[5, 5]], "radius": 2,
               "value": _value(cast, "nucleus"), "mode": "paint"}
    first = stroke_apply(volume, cast.annotator, Role.ANNOTATOR, payload)
    again = stroke_apply(volume, cast.annotator, Role.ANNOTATOR, payload)
    assert again.duplicate and again.version == first.version
    assert Stroke.objects.count() == 1


def test_strokes_in_orthogonal_planes_cross_slices(cast: Any, volume: Any) -> None:
    mito = _value(cast, "mitochondrion")
    _stroke(volume, cast.annotator, value=mito, axis="y", index=30, points=[[1, 10], [4, 10]], radius=1)
    layer = _layer(volume)
    assert layer[1:5, 30, 10].tolist() == [mito] * 4 and layer[:, 29:32, 9:12].sum() > 0


def test_undo_is_exact_where_another_users_stroke_overlaps(cast: Any, volume: Any) -> None:
    nucleus, mito = _value(cast, "nucleus"), _value(cast, "mitochondrion")
    mine = _stroke(volume, cast.annotator, value=nucleus, points=[[30, 10], [30, 40]])
    _stroke(volume, cast.reviewer, value=mito, points=[[20, 30], [40, 30]], role=Role.REVIEWER)
    stroke_undo(volume, cast.annotator, Role.ANNOTATOR, mine.uuid)
    layer = _layer(volume)
    assert layer[2, 30, 12] == 0          # only mine: gone
    assert layer[2, 30, 30] == mito       # theirs, painted over mine: kept
    assert nucleus not in np.unique(layer)
    stroke_redo(volume, cast.annotator, Role.ANNOTATOR, mine.uuid)
    layer = _layer(volume)
    assert layer[2, 30, 12] == nucleus and layer[2, 30, 30] == mito  # theirs is still on top


def test_only_the_author_or_a_manager_may_undo(cast: Any, volume: Any) -> None:
    mine = _stroke(volume, cast.annotator, value=_value(cast, "nucleus"), points=[[5, 5]])
    with pytest.raises(ApplicationError):
        stroke_undo(volume, cast.reviewer, Role.REVIEWER, mine.uuid)
    stroke_undo(volume, cast.manager, Role.MANAGER, mine.uuid)
    assert not Stroke.objects.get(uuid=mine.uuid).active


def test_replaying_the_log_rebuilds_the_layer_bit_for_bit(cast: Any, volume: Any) -> None:
    rng = np.random.default_rng(3)
    values = [_value(cast, n) for n in ("background", "nucleus", "nucleolus", "mitochondrion")]
    done = []
    for step in range(25):
        axis = ["z", "y", "x"][step % 3]
        rows, cols = {"z": (64, 80), "y": (6, 80), "x": (6, 64)}[axis]
        index = int(rng.integers(0, {"z": 6, "y": 64, "x": 80}[axis]))
        mode = ["paint", "paint", "erase", "polygon", "fill"][step % 5]
        n = 4 if mode == "polygon" else int(rng.integers(1, 5))
        points = [[float(rng.integers(0, rows)), float(rng.integers(0, cols))] for _ in range(n)]
        done.append(_stroke(volume, cast.annotator, value=int(rng.choice(values)), axis=axis, index=index,
                            points=points, radius=float(rng.integers(1, 6)), mode=mode))
        if step % 7 == 6:
            stroke_undo(volume, cast.annotator, Role.ANNOTATOR, done[int(rng.integers(0, len(done)))].uuid)
    assert np.array_equal(layer_replay(volume, "manual"), _layer(volume))


@pytest.mark.parametrize("change,code", [
    ({"points": [[500, 5]]}, "off_volume"), ({"index": 99}, "off_volume"), ({"value": 99}, "unknown_class"),
    ({"radius": 1e9}, "invalid_stroke"), ({"points": [[1, 1]] * 20001}, "invalid"), ({"mode": "explode"}, "invalid"),
    ({"layer": "nope"}, "unknown_layer"),
])
def test_bad_strokes_get_a_clear_4xx_and_change_nothing(cast: Any, volume: Any, change: dict, code: str) -> None:
    client = Client()
    client.force_login(cast.annotator)
    before = _layer(volume).copy()
    body = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 1, "points": [[5, 5]], "radius": 2,
            "value": _value(cast, "nucleus"), "mode": "paint", **change}
    response = client.post(f"/api/volumes/{volume.pk}/strokes/", body, content_type="application/json")
    assert 400 <= response.status_code < 500 and response.json()["error"]["code"].startswith(code)
    assert np.array_equal(_layer(volume), before) and not Stroke.objects.exists()


def test_viewers_cannot_paint_over_rest(cast: Any, volume: Any) -> None:
    client = Client()
    client.force_login(cast.viewer)
    body = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 1, "points": [[5, 5]], "radius": 2,
            "value": _value(cast, "nucleus"), "mode": "paint"}
    assert client.post(f"/api/volumes/{volume.pk}/strokes/", body, content_type="application/json").status_code == 403
    assert not Stroke.objects.exists()


def test_the_rest_round_trip_paints_undoes_and_the_label_tile_follows(cast: Any, volume: Any) -> None:
    client = Client()
    client.force_login(cast.annotator)
    uid = str(uuid.uuid4())
    body = {"uuid": uid, "axis": "z", "index": 3, "points": [[10, 10]], "radius": 4,
            "value": _value(cast, "lysosome"), "mode": "paint"}
    assert client.post(f"/api/volumes/{volume.pk}/strokes/", body, content_type="application/json").status_code == 201
    assert client.get(f"/api/volumes/{volume.pk}/layers/manual/value/?z=3&y=10&x=10").json() == {
        "value": _value(cast, "lysosome")}
    tile = f"/api/volumes/{volume.pk}/layers/manual/tiles/z/3/0/0/0.png"
    painted = client.get(tile)
    assert client.post(f"/api/volumes/{volume.pk}/strokes/{uid}/undo/").status_code == 200
    assert client.get(tile, HTTP_IF_NONE_MATCH=painted["ETag"]).status_code == 200  # new content, new ETag
    assert client.get(f"/api/volumes/{volume.pk}/layers/manual/value/?z=3&y=10&x=10").json() == {"value": 0}


def test_a_fill_stays_inside_its_region(cast: Any, volume: Any) -> None:
    wall, inside = _value(cast, "nucleus"), _value(cast, "nucleolus")
    _stroke(volume, cast.annotator, value=wall, points=[[10, 10], [10, 40], [40, 40], [40, 10]], mode="polygon")
    _stroke(volume, cast.annotator, value=inside, points=[[20, 20]], mode="fill")
    layer = _layer(volume)[2]
    assert layer[20, 20] == inside and layer[5, 5] == 0 and (layer == inside).sum() == (layer[10:41, 10:41] == inside).sum()
