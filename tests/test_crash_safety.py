"""A process killed (SIGKILL) while it writes strokes to a label layer: every chunk holds its
old or its new content, never a torn one, and the stroke log says what the layer should be.

The writer is a second process running annotations.strokes.stroke_apply in a loop on the
test database file (the worker tests' way of sharing it). It is killed either from outside
at a random moment, or by itself at a chosen point of one stroke: after the stroke row was
committed but before any chunk was written, halfway through writing the second chunk of
level 0, or after level 0 but before the coarser pyramid levels.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations import raster
from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.models import Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay, stroke_apply
from tests.conftest import ROOT, _require_redis, _service_env
from tests.factories import make_volume

pytestmark = [pytest.mark.services]

SHAPE = (8, 640, 640)  # two pyramid levels; label chunks (4, 256, 256): 18 chunks at level 0
# The stroke the self-killing writer dies in: across all four XY chunks of z 0..3.
BIG = {"axis": "z", "index": 1, "points": [[60, 60], [320, 320], [60, 320]], "radius": 40, "mode": "paint",
       "value": 4}

_WRITER = r"""
import json, os, signal, sys, time, uuid
from pathlib import Path
import numpy as np
import django
django.setup()
from annotations import strokes
from annotations.imaging import chunkio, omezarr
from annotations.models import Role, Volume
from django.contrib.auth import get_user_model

volume = Volume.objects.get(pk=int(os.environ["VOLUME"]))
user = get_user_model().objects.get(pk=int(os.environ["USER_ID"]))
point, crash_at = os.environ.get("CRASH_POINT", ""), int(os.environ.get("CRASH_AT", "-1"))
armed = [False]
puts = [0]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "after_commit":  # the row is committed; no chunk written yet
    original_write = strokes._write
    def _write(*args, **kwargs):
        if armed[0]:
            die()
        return original_write(*args, **kwargs)
    strokes._write = _write
elif point == "mid_chunk":  # half of the second level-0 chunk is on disk
    original_store = chunkio.DirectChunks._store
    def _store(self, path, chunk):
        if armed[0] and "/labels/manual/0/" in str(path):
            puts[0] += 1
            if puts[0] == 2:
                data = self.codec.encode(np.ascontiguousarray(chunk))
                tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
                with tmp.open("wb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                die()
        return original_store(self, path, chunk)
    chunkio.DirectChunks._store = _store
elif point == "before_pyramid":  # level 0 written, coarser levels not
    original_pyramid = omezarr.update_label_pyramid_boxes
    def update_label_pyramid_boxes(*args, **kwargs):
        if armed[0]:
            die()
        return original_pyramid(*args, **kwargs)
    omezarr.update_label_pyramid_boxes = update_label_pyramid_boxes

try:  # label pyramids may be updated after the ack, on a background thread
    from annotations.pyramid_updates import updater
    flush = updater.flush
except ImportError:
    def flush():
        return True

rng = np.random.default_rng(int(os.environ.get("SEED", "0")))
shape = tuple(volume.shape)
big = json.loads(os.environ["BIG"])
n = 0
while True:
    if n == crash_at:
        flush()  # the strokes before this one are wholly written, pyramids included
        armed[0] = True
        payload = dict(big)
    else:
        axis = "zyx"[int(rng.integers(3))]
        extent = shape["zyx".index(axis)]
        plane = [s for i, s in enumerate(shape) if i != "zyx".index(axis)]
        points = [[float(rng.uniform(0, plane[0] - 1)), float(rng.uniform(0, plane[1] - 1))]
                  for _ in range(int(rng.integers(1, 4)))]
        payload = {"axis": axis, "index": int(rng.integers(extent)), "points": points,
                   "radius": float(rng.uniform(3, 60)), "mode": "erase" if rng.random() < 0.2 else "paint",
                   "value": int(rng.integers(2, 7))}
    payload["uuid"] = str(uuid.uuid4())
    strokes.stroke_apply(volume, user, Role.ANNOTATOR, payload)
    sys.stdout.write(f"ack {payload['uuid']}\n")  # one write: a kill cannot split the line
    sys.stdout.flush()
    if armed[0]:  # a deferred pyramid update has not died yet: let it
        flush()
        time.sleep(60)
    n += 1
"""


def _writer(settings: Any, volume: Any, user: Any, *, seed: int, point: str = "", at: int = -1
            ) -> subprocess.Popen[str]:
    import json

    env = {**_service_env(settings), "VOLUME": str(volume.pk), "USER_ID": str(user.pk), "SEED": str(seed),
           "CRASH_POINT": point, "CRASH_AT": str(at), "BIG": json.dumps(BIG)}
    return subprocess.Popen([sys.executable, "-c", _WRITER], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _ack(line: str) -> str | None:
    """The UUID of a whole acknowledgement line; a line cut short by a kill acknowledges nothing."""
    parts = line.split()
    return parts[1] if line.endswith("\n") and len(parts) == 2 and parts[0] == "ack" else None


def _acks(proc: subprocess.Popen[str], count: int, seconds: float = 90) -> list[str]:
    """Read `count` acknowledgements (UUIDs) from the writer, or all it printed before it died."""
    acked: list[str] = []
    deadline = time.monotonic() + seconds
    while len(acked) < count:
        assert time.monotonic() < deadline, f"the writer acknowledged only {len(acked)} strokes"
        line = proc.stdout.readline()
        if not line:
            break
        if (ack := _ack(line)) is not None:
            acked.append(ack)
    return acked


def _level(volume: Any, level: int) -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), LayerName.MANUAL, level)[:])


def _replay_without(volume: Any, stroke: Stroke) -> np.ndarray:
    """The replay as it was before `stroke` (the log minus that one row)."""
    Stroke.objects.filter(pk=stroke.pk).update(active=False)
    try:
        return layer_replay(volume, LayerName.MANUAL)
    finally:
        Stroke.objects.filter(pk=stroke.pk).update(active=True)


def _chunks(box: raster.Box, chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The parts of `box` that fall in one chunk each."""
    ranges = []
    for (lo, hi), c in zip(box, chunks):
        edges = sorted({lo, hi, *range((lo // c + 1) * c, hi, c)})
        ranges.append([slice(a, b) for a, b in zip(edges, edges[1:])])
    return [(z, y, x) for z in ranges[0] for y in ranges[1] for x in ranges[2]]


def _check_old_or_new(volume: Any, layer: np.ndarray) -> tuple[Stroke, np.ndarray, int]:
    """Assert the layer equals the replay of the log except inside the last stroke's box, where
    each chunk holds the replay with or without that stroke; returns (last, full replay,
    chunks holding the new content)."""
    last = Stroke.objects.filter(layer__volume=volume, layer__name=LayerName.MANUAL).order_by("-id").first()
    assert last is not None, "the log holds no stroke"
    full = layer_replay(volume, LayerName.MANUAL)
    before = _replay_without(volume, last)
    box = ((last.z0, last.z1), (last.y0, last.y1), (last.x0, last.x1))
    outside = np.ones(layer.shape, bool)
    outside[raster.box_slices(box)] = False
    np.testing.assert_array_equal(layer[outside], full[outside])
    chunks = omezarr.open_label_level(volume_zarr_path(volume), LayerName.MANUAL, 0).chunks
    new = 0
    for part in _chunks(box, tuple(chunks)):
        is_new, is_old = np.array_equal(layer[part], full[part]), np.array_equal(layer[part], before[part])
        assert is_new or is_old, f"chunk part {part} holds neither the old nor the new content"
        new += int(is_new and not is_old)
    return last, full, new


def _repair_by_replay(volume: Any, full: np.ndarray, box: raster.Box) -> None:
    """What a repair has to do (the app has no such step): write the replay over the box."""
    dest = volume_zarr_path(volume)
    omezarr.open_label_level(dest, LayerName.MANUAL, 0, mode="r+")[raster.box_slices(box)] = full[raster.box_slices(box)]
    omezarr.update_label_pyramid(dest, LayerName.MANUAL, z=box[0], y=box[1], x=box[2])


def _pyramid_agrees(volume: Any) -> bool:
    """Level 1 is the downsampling of level 0 (the volume's sides are even)."""
    return bool(np.array_equal(_level(volume, 1), omezarr.downsample_mode(_level(volume, 0))))


@pytest.fixture
def painted(cast: Any, transactional_db: Any, tmp_path: Path) -> Any:
    _require_redis()
    return make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8), name="blank",
                       voxel_size_nm=(4.0, 4.0, 4.0))


def test_a_writer_killed_at_random_moments_leaves_old_or_new_chunks_and_a_log_that_repairs_the_layer(
        painted: Any, cast: Any, settings: Any) -> None:
    rng = np.random.default_rng(7)
    total_acked: list[str] = []
    for round_ in range(4):
        proc = _writer(settings, painted, cast.annotator, seed=round_)
        total_acked += _acks(proc, 5)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        total_acked += _acks(proc, sys.maxsize)  # what it printed before the kill

        layer = _level(painted, 0)  # every chunk still decodes
        logged = set(Stroke.objects.filter(layer__volume=painted).values_list("uuid", flat=True))
        assert set(total_acked) <= {str(u) for u in logged}, "an acknowledged stroke is missing from the log"
        # at most the one stroke in flight at each kill so far is logged but unacknowledged
        assert len(logged) - len(total_acked) <= round_ + 1, "more than the strokes in flight are unacknowledged"
        last, full, _ = _check_old_or_new(painted, layer)
        _repair_by_replay(painted, full, ((last.z0, last.z1), (last.y0, last.y1), (last.x0, last.x1)))
        np.testing.assert_array_equal(_level(painted, 0), full)
    assert len(total_acked) >= 20


@pytest.mark.parametrize("point", ["after_commit", "mid_chunk", "before_pyramid"])
def test_a_writer_killed_inside_a_stroke_leaves_old_or_new_chunks_and_the_log_holds_the_stroke(
        point: str, painted: Any, cast: Any, settings: Any) -> None:
    proc = _writer(settings, painted, cast.annotator, seed=1, point=point, at=3)
    acked = _acks(proc, 10)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    layer = _level(painted, 0)
    last, full, new = _check_old_or_new(painted, layer)
    assert last.mode == "paint" and last.radius == BIG["radius"]
    if point == "before_pyramid":  # acknowledged too where the pyramid follows the ack
        assert len(acked) in (3, 4)
    else:  # no ack before level 0 is written
        assert len(acked) == 3 and str(last.uuid) not in acked
    partials = list((volume_zarr_path(painted) / "labels" / LayerName.MANUAL / "0").rglob("*.partial"))
    if point == "after_commit":
        assert new == 0 and not np.array_equal(layer, full)  # the log is ahead of the layer
    elif point == "mid_chunk":
        assert partials, "the torn chunk file was not left behind"  # ... and readers ignored it
        assert not np.array_equal(layer, full)
    else:
        np.testing.assert_array_equal(layer, full)  # level 0 is whole; the coarser levels lag
        assert not _pyramid_agrees(painted)
    box = ((last.z0, last.z1), (last.y0, last.y1), (last.x0, last.x1))
    _repair_by_replay(painted, full, box)
    np.testing.assert_array_equal(_level(painted, 0), full)
    assert _pyramid_agrees(painted)


def test_a_stroke_resent_after_its_writer_died_before_the_chunks_reaches_the_layer(
        painted: Any, cast: Any, settings: Any) -> None:
    proc = _writer(settings, painted, cast.annotator, seed=2, point="after_commit", at=0)
    assert _acks(proc, 1) == []
    proc.wait(timeout=60)
    lost = Stroke.objects.get(layer__volume=painted)
    # The client never got its ack, so it sends the same stroke again (the viewer's resend).
    # Its row is in the log but its chunks never landed: the resend paints it from the log.
    stroke_apply(painted, cast.annotator, Role.ANNOTATOR, {**BIG, "uuid": str(lost.uuid)})
    np.testing.assert_array_equal(_level(painted, 0), layer_replay(painted, LayerName.MANUAL))


def test_the_volume_still_serves_tiles_after_a_writer_died_mid_chunk(
        painted: Any, cast: Any, settings: Any) -> None:
    proc = _writer(settings, painted, cast.annotator, seed=3, point="mid_chunk", at=0)
    proc.wait(timeout=60)
    client = Client()
    client.force_login(cast.viewer)
    for ty in (0, 1):
        for tx in (0, 1):
            response = client.get(f"/api/volumes/{painted.pk}/layers/{LayerName.MANUAL}/tiles/z/1/0/{ty}/{tx}.png")
            assert response.status_code == 200, response.content[:300]
