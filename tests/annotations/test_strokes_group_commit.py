"""Group commit: strokes applied together (strokes_apply) end exactly as if applied one by one."""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from annotations import strokes
from annotations.imaging import omezarr
from annotations.layers import layer_create
from annotations.models import LabelLayer, Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay, stroke_apply, stroke_undo, strokes_apply
from emportal.errors import ApplicationError
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

SHAPE = (6, 64, 80)


@pytest.fixture
def volumes(cast: Any, tmp_path: Any) -> tuple[Any, Any]:
    """Two blank volumes: one painted in batches, one stroke by stroke."""
    return (make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8), name="batched"),
            make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8), name="one-by-one"))


def _layer(volume: Any) -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])


def _values(cast: Any) -> list[int]:
    return list(cast.project.label_classes.filter(kind="semantic").values_list("value", flat=True))


def _random_payloads(cast: Any, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    values = _values(cast)
    out = []
    for step in range(n):
        axis = ["z", "y", "x"][step % 3]
        rows, cols = {"z": (64, 80), "y": (6, 80), "x": (6, 64)}[axis]
        mode = ["paint", "paint", "erase", "polygon", "fill"][int(rng.integers(0, 5))]
        k = 4 if mode == "polygon" else int(rng.integers(1, 4))
        out.append({"uuid": str(uuid.uuid4()), "layer": "manual", "axis": axis,
                    "index": int(rng.integers(0, {"z": 6, "y": 64, "x": 80}[axis])),
                    "points": [[float(rng.integers(0, rows)), float(rng.integers(0, cols))] for _ in range(k)],
                    "radius": float(rng.integers(1, 8)), "value": int(rng.choice(values)), "mode": mode})
    return out


def test_a_batch_ends_as_the_same_strokes_one_by_one_with_the_same_versions(cast: Any, volumes: Any) -> None:
    batched, single = volumes
    payloads = _random_payloads(cast, 30, seed=5)
    got = []
    for start in (0, 3, 17):  # three batches of different sizes
        stop = {0: 3, 3: 17, 17: 30}[start]
        got += strokes_apply(batched, [(cast.annotator, Role.ANNOTATOR, p) for p in payloads[start:stop]])
    one_by_one = [stroke_apply(single, cast.annotator, Role.ANNOTATOR, {**p, "uuid": str(uuid.uuid4())})
                  for p in payloads]
    assert [o.version for o in got] == [o.version for o in one_by_one] == list(range(1, 31))
    assert [o.uuid for o in got] == [p["uuid"] for p in payloads]
    assert np.array_equal(_layer(batched), _layer(single)) and _layer(batched).any()
    assert np.array_equal(layer_replay(batched, "manual"), _layer(batched))
    logged = list(Stroke.objects.filter(layer__volume=batched).order_by("id").values_list("uuid", "version"))
    assert [(str(u), v) for u, v in logged] == [(p["uuid"], o.version) for p, o in zip(payloads, got)]
    assert batched.layers.get(name="manual").version == 30


def test_before_patches_of_a_batch_see_the_strokes_ahead_so_undo_stays_exact(cast: Any, volumes: Any) -> None:
    volume, _ = volumes
    nucleus, mito = _values(cast)[1], _values(cast)[3]
    first = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 2, "points": [[30, 10], [30, 40]], "radius": 3,
             "value": nucleus, "mode": "paint"}
    second = {**first, "uuid": str(uuid.uuid4()), "points": [[20, 30], [40, 30]], "value": mito}
    strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, first), (cast.annotator, Role.ANNOTATOR, second)])
    row = Stroke.objects.get(uuid=str(second["uuid"]))
    box = ((row.z0, row.z1), (row.y0, row.y1), (row.x0, row.x1))
    before = strokes.raster.unpack_array(row.before, tuple(hi - lo for lo, hi in box), _layer(volume).dtype)
    assert (before == nucleus).any()  # the first stroke of the batch was under the second
    stroke_undo(volume, cast.annotator, Role.ANNOTATOR, first["uuid"])
    layer = _layer(volume)
    assert layer[2, 30, 12] == 0 and layer[2, 30, 30] == mito and nucleus not in np.unique(layer)
    assert np.array_equal(layer_replay(volume, "manual"), layer)


def test_a_bad_stroke_in_a_batch_gets_its_error_and_the_others_are_applied(cast: Any, volumes: Any) -> None:
    volume, _ = volumes
    good = _random_payloads(cast, 2, seed=1)
    bad = {**good[0], "uuid": str(uuid.uuid4()), "points": [[500, 5]], "mode": "paint"}
    viewer = {**good[0], "uuid": str(uuid.uuid4())}
    out = strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, good[0]), (cast.annotator, Role.ANNOTATOR, bad),
                                 (cast.viewer, Role.VIEWER, viewer), (cast.annotator, Role.ANNOTATOR, good[1])])
    assert isinstance(out[1], ApplicationError) and out[1].code == "off_volume"
    assert isinstance(out[2], ApplicationError) and out[2].code == "forbidden"
    assert [out[0].version, out[3].version] == [1, 2]
    assert set(Stroke.objects.values_list("uuid", flat=True)) == {uuid.UUID(good[0]["uuid"]),
                                                                  uuid.UUID(good[1]["uuid"])}


def test_a_uuid_twice_in_a_batch_or_already_logged_is_applied_once(cast: Any, volumes: Any) -> None:
    volume, _ = volumes
    a, b = _random_payloads(cast, 2, seed=2)
    first = stroke_apply(volume, cast.annotator, Role.ANNOTATOR, a)
    out = strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, p) for p in (b, a, b)])
    assert out[1].duplicate and out[1].version == first.version
    assert not out[0].duplicate and out[2].duplicate and out[2].version == out[0].version == 2
    assert out[0].event is not None and out[2].event is None  # a duplicate is not echoed again
    assert Stroke.objects.count() == 2


def test_a_fill_in_a_batch_sees_the_wall_painted_just_before_it(cast: Any, volumes: Any) -> None:
    volume, _ = volumes
    wall, inside = _values(cast)[1], _values(cast)[2]
    ring = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 2, "points": [[10, 10], [10, 40], [40, 40], [40, 10]],
            "radius": 1, "value": wall, "mode": "polygon"}
    fill = {"uuid": str(uuid.uuid4()), "axis": "z", "index": 2, "points": [[5, 5]], "value": inside, "mode": "fill"}
    after = {**ring, "uuid": str(uuid.uuid4()), "points": [[50, 50], [50, 60], [60, 60]]}
    out = strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, p) for p in (ring, fill, after)])
    layer = _layer(volume)[2]
    assert layer[5, 5] == inside and layer[20, 20] == wall  # the fill flowed around the wall, not into it
    assert layer[55, 58] == wall  # the stroke after the fill is painted over it
    assert [o.version for o in out] == [1, 2, 3]
    assert np.array_equal(layer_replay(volume, "manual"), _layer(volume))


def test_a_uuid_logged_by_another_process_meanwhile_is_a_duplicate_and_the_batch_goes_on(
        cast: Any, volumes: Any, monkeypatch: Any) -> None:
    volume, _ = volumes
    a, b, c = _random_payloads(cast, 3, seed=3)
    stroke_apply(volume, cast.annotator, Role.ANNOTATOR, b)  # "the other process"
    claim = strokes._claim_uuid
    monkeypatch.setattr(strokes, "_claim_uuid", lambda v, r, d: (str(uuid.UUID(d["uuid"])), None)
                        if d["uuid"] == b["uuid"] else claim(v, r, d))  # b's check ran before the other commit
    out = strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, p) for p in (a, b, c)])
    assert not out[0].duplicate and out[1].duplicate and out[1].version == 1 and not out[2].duplicate
    assert Stroke.objects.count() == 3
    assert volume.layers.get(name="manual").version == 3
    assert np.array_equal(layer_replay(volume, "manual"), _layer(volume))


def test_the_layer_max_value_follows_a_batch_of_cell_ids(cast: Any, volumes: Any) -> None:
    volume, _ = volumes
    layer_create(volume, "cells", kind=LabelLayer.Kind.INSTANCES)
    payloads = [{"uuid": str(uuid.uuid4()), "layer": "cells", "axis": "z", "index": 1, "points": [[10, 10 + 5 * i]],
                 "radius": 2, "value": v, "mode": "paint"} for i, v in enumerate((7, 70000, 12))]
    out = strokes_apply(volume, [(cast.annotator, Role.ANNOTATOR, p) for p in payloads])
    assert [o.version for o in out] == [1, 2, 3]
    assert volume.layers.get(name="cells").max_value == 70000
