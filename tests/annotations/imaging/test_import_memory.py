"""An import's memory is bounded by its read regions, not by the page or the volume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.import_memory import _CHILD_IMPORT, ROOT, write_tiled_tiff

CAP_MIB = 24


@pytest.mark.slow
def test_importing_one_page_twenty_times_the_cap_stays_under_the_cap(tmp_path: Path) -> None:
    side = 22528  # 484 MiB of uint8 in one zlib-tiled page: 20x the cap
    src, out = tmp_path / "page.tif", tmp_path / "out"
    out.mkdir()
    write_tiled_tiff(src, pages=1, side=side)
    code = _CHILD_IMPORT.format(root=str(ROOT), out=str(out), src=str(src))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    growth_mib = (result["peak_kib"] - result["before_kib"]) / 1024  # over a warm interpreter
    assert side * side / 2**20 >= 20 * CAP_MIB
    assert growth_mib < CAP_MIB, result
    assert result["levels"] == 7  # 22528 -> 352 in six halvings
