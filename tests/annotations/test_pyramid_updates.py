"""Label pyramids follow acknowledged strokes on a background thread, and readers can wait for them."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from annotations.imaging.chunkio import Box
from annotations.imaging.omezarr import create_label_layer, downsample_mode, open_label_level, write_pyramid
from annotations.imaging.readers import ArraySource
from annotations.pyramid_updates import PyramidUpdater


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "v.ome.zarr"
    write_pyramid(ArraySource(np.zeros((3, 1030, 600), np.uint8)), path, voxel_size_nm=(4, 4, 4),
                  chunks=(1, 256, 256))
    create_label_layer(path, "manual")
    return path


def _assert_pyramid_matches_level0(dest: Path) -> None:
    full = np.asarray(open_label_level(dest, "manual", 0)[:])
    for level in (1, 2):
        full = downsample_mode(full)
        np.testing.assert_array_equal(open_label_level(dest, "manual", level)[:], full)


def test_many_boxes_submitted_quickly_all_reach_every_level(dest: Path) -> None:
    updater, lock = PyramidUpdater(), threading.Lock()
    level0 = open_label_level(dest, "manual", 0, mode="r+")
    rng = np.random.default_rng(0)
    for i in range(25):
        z, y, x = int(rng.integers(3)), int(rng.integers(0, 990)), int(rng.integers(0, 560))
        level0[z, y:y + 40, x:x + 40] = i % 5 + 1
        updater.submit(dest, "manual", ((z, z + 1), (y, y + 40), (x, x + 40)), lambda: lock)
    assert updater.flush(timeout=60)
    _assert_pyramid_matches_level0(dest)


def test_a_reader_waits_until_the_layer_it_reads_is_up_to_date(dest: Path) -> None:
    updater = PyramidUpdater()
    held = threading.Lock()  # stands for the layer's file lock, held by another writer
    held.acquire()

    @contextmanager
    def layer_lock() -> Iterator[None]:
        with held:
            yield

    open_label_level(dest, "manual", 0, mode="r+")[1, 0:64, 0:64] = 3
    updater.submit(dest, "manual", ((1, 2), (0, 64), (0, 64)), layer_lock)
    assert updater.wait(dest, "manual", timeout=0.3) is False  # still queued behind the lock
    assert open_label_level(dest, "manual", 1)[1, 0, 0] == 0
    held.release()
    assert updater.wait(dest, "manual", timeout=30) is True
    assert open_label_level(dest, "manual", 1)[1, 0, 0] == 3
    assert updater.wait(dest, "other-layer", timeout=0) is True  # nothing owed for a layer never submitted


def test_a_failing_update_is_logged_and_does_not_block_readers(dest: Path, caplog: pytest.LogCaptureFixture) -> None:
    updater, lock = PyramidUpdater(), threading.Lock()
    updater.submit(dest, "no-such-layer", ((0, 1), (0, 8), (0, 8)), lambda: lock)
    assert updater.wait(dest, "no-such-layer", timeout=30) is True
    assert "label pyramid update" in caplog.text


def test_boxes_submitted_within_the_delay_are_written_in_one_pass(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from annotations.imaging import omezarr

    passes: list[int] = []
    real = omezarr.update_label_pyramid_boxes

    def counting(d: Path, name: str, boxes: Sequence[Box]) -> None:
        passes.append(len(boxes))
        real(d, name, boxes)

    monkeypatch.setattr(omezarr, "update_label_pyramid_boxes", counting)
    updater, lock = PyramidUpdater(delay=0.5), threading.Lock()
    level0 = open_label_level(dest, "manual", 0, mode="r+")
    for i in range(6):
        level0[i % 3, 100 * i:100 * i + 30, 50:80] = i + 1
        updater.submit(dest, "manual", ((i % 3, i % 3 + 1), (100 * i, 100 * i + 30), (50, 80)), lambda: lock)
    assert updater.flush(timeout=30)
    assert passes == [6]
    _assert_pyramid_matches_level0(dest)


def test_a_reader_does_not_wait_out_the_gathering_delay(dest: Path) -> None:
    updater, lock = PyramidUpdater(delay=30.0), threading.Lock()
    open_label_level(dest, "manual", 0, mode="r+")[0, 0:8, 0:8] = 4
    updater.submit(dest, "manual", ((0, 1), (0, 8), (0, 8)), lambda: lock)
    started = time.monotonic()
    assert updater.wait(dest, "manual", timeout=10) is True
    assert time.monotonic() - started < 5
    assert open_label_level(dest, "manual", 1)[0, 0, 0] == 4
