"""Units of a job's work claimed through files: one claimer per unit, done units skipped,
stale claims taken over, results written whole, nothing written once the folder is gone."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from emportal.jobs.claims import UnitClaims, worker_name


def _claims(tmp_path: Path, stale_seconds: float = 60.0) -> UnitClaims:
    folder = tmp_path / "job-1"
    folder.mkdir(exist_ok=True)
    return UnitClaims(folder, "unit", ".bin", stale_seconds=stale_seconds)


def test_a_unit_is_claimed_once_and_the_claim_names_the_claimer(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    assert claims.claim(0) is True
    assert claims.claim(0) is False  # a second worker asking gets no
    assert claims.claim_path(0).read_text() == worker_name()
    assert claims.claim(1) is True  # other units are free


def test_a_done_unit_is_never_claimed_and_is_listed_as_done(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    claims.done_write(2, lambda handle: handle.write(b"rows"))
    assert claims.claim(2) is False
    assert claims.done(4) == [2]
    assert claims.done_path(2).read_bytes() == b"rows"
    assert not [p for p in claims.folder.iterdir() if p.name.endswith(".tmp")]


def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_not(tmp_path: Path) -> None:
    claims = _claims(tmp_path, stale_seconds=5.0)
    claims.claim_path(0).write_text("dead-host:1")
    claims.claim_path(1).write_text("live-host:2")
    old = time.time() - 10
    os.utime(claims.claim_path(0), (old, old))
    assert claims.claim(0) is True
    assert claims.claim_path(0).read_text() == worker_name()
    assert claims.claim(1) is False


def test_a_running_unit_keeps_its_claim_fresh(tmp_path: Path) -> None:
    claims = _claims(tmp_path, stale_seconds=0.4)  # touched every 0.1 s
    assert claims.claim(0)
    old = time.time() - 10
    os.utime(claims.claim_path(0), (old, old))
    with claims.alive(0):
        time.sleep(0.5)
        assert time.time() - claims.claim_path(0).stat().st_mtime < 0.4


def test_run_does_the_units_nobody_else_holds_in_order_and_stops_when_told(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    claims.claim_path(1).write_text("other-host:3")  # busy elsewhere
    claims.done_write(3, lambda handle: handle.write(b"x"))
    ran: list[int] = []
    assert claims.run(range(5), ran.append, should_stop=lambda: len(ran) >= 2) == 2
    assert ran == [0, 2]
    assert claims.run(range(5), ran.append, should_stop=lambda: False) == 1
    assert ran == [0, 2, 4]


def test_nothing_is_claimed_or_written_once_the_jobs_folder_is_gone(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    claims.folder.rmdir()
    assert claims.claim(0) is False
    assert claims.done(3) == []
    with pytest.raises(FileNotFoundError):
        claims.done_write(0, lambda handle: handle.write(b"late"))
    assert not claims.folder.exists()
