"""Projections: workers shorten a stage by the measured 2-worker speed-up, and a serial part never spreads."""
from __future__ import annotations

import pytest

from benchmarks.projections import projected_seconds


def test_one_worker_takes_work_over_rate():
    assert projected_seconds(100.0, 2.0, 1, 1.5) == 50.0


def test_each_added_worker_keeps_the_second_workers_efficiency():
    assert projected_seconds(100.0, 1.0, 2, 1.8) == pytest.approx(100.0 / 1.8)
    assert projected_seconds(100.0, 1.0, 4, 1.8) == pytest.approx(100.0 / (4 * 0.9))


def test_a_serial_share_bounds_the_cells_speed_up():
    # 1.5x with 2 workers: a third of the work is serial, so 16 workers give 1 / (1/3 + 2/3 / 16)
    assert projected_seconds(100.0, 1.0, 2, 1.5, serial=True) == pytest.approx(100.0 / 1.5)
    assert projected_seconds(100.0, 1.0, 16, 1.5, serial=True) == pytest.approx(100.0 * (1 / 3 + 2 / 3 / 16))
    assert projected_seconds(100.0, 1.0, 16, 1.5, serial=True) > projected_seconds(100.0, 1.0, 16, 1.5)
