"""The cells job benchmark on real workers: its process accounting, and 1 against 2 workers end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cells_job import _children, _proc_usage

ROOT = Path(__file__).resolve().parents[2]


def test_a_started_process_is_found_as_a_child_and_its_usage_read() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(30)"])
    try:
        deadline = time.time() + 20
        while _proc_usage(proc.pid)["hwm_mib"] < 64 and time.time() < deadline:
            time.sleep(0.1)
        assert proc.pid in _children(os.getpid())
        usage = _proc_usage(proc.pid)
        assert usage["hwm_mib"] >= 64 and usage["rss_mib"] >= 64 and usage["cpu_s"] >= 0
    finally:
        proc.kill()
        proc.wait()
    assert _proc_usage(proc.pid) == {"cpu_s": 0.0, "rss_mib": 0.0, "hwm_mib": 0.0}  # gone: zeros


@pytest.mark.slow
def test_the_job_on_two_workers_writes_the_cells_of_one_worker(tmp_path: Path) -> None:
    out = tmp_path / "cells-job-workers.json"
    got = subprocess.run([sys.executable, "benchmarks/cells_job.py", "--sizes", "48", "--yx", "128", "--workers", "1",
                          "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    runs = json.loads(out.read_text())["sizes"][0]["runs"]
    assert [r["workers"] for r in runs] == [1, 2] and [r["helpers"] for r in runs] == [0, 1]
    assert all(r["equal_to_first"] for r in runs) and runs[0]["cells"] > 0
    assert all(sum(r["intervals_by_worker"].values()) == r["intervals"] > 1 for r in runs)
    assert len(runs[0]["intervals_by_worker"]) == 1  # one worker ran them all
    assert len(runs[1]["peak_rss_mib"]) == 2 and runs[1]["seconds"] > 0
