"""An import's memory is bounded by its read regions, not by the page or the volume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

ROOT = Path(__file__).resolve().parents[3]
CAP_MIB = 24

# Warms up the libraries with a small import first, so the figure is what the big one adds.
_CHILD = r"""
import json, resource, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {root!r})
from annotations.imaging import ArraySource, open_source, write_pyramid
out = Path({out!r})
write_pyramid(ArraySource(np.random.default_rng(0).integers(0, 200, (2, 1500, 1500)).astype(np.uint8)),
              out / "warm.ome.zarr", voxel_size_nm=(4, 4, 4))
with open_source(Path({src!r})) as src:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = write_pyramid(src, out / "big.ome.zarr", voxel_size_nm=(4, 4, 4))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"growth_mib": (after - before) / 1024, "levels": [list(l.shape) for l in info.levels]}}))
"""


def _write_one_tiled_page(path: Path, side: int, tile: int = 512) -> None:
    """One zlib-tiled page written tile by tile, so the test itself never holds it."""
    base = np.random.default_rng(0).integers(0, 4, (tile, tile), dtype=np.uint8) * 60

    def tiles():  # type: ignore[no-untyped-def]
        for i in range((side // tile) ** 2):
            yield base + np.uint8(i % 50)

    tifffile.imwrite(path, tiles(), shape=(1, side, side), dtype=np.uint8, tile=(tile, tile),
                     compression="zlib", compressionargs={"level": 1}, bigtiff=True, photometric="minisblack")


@pytest.mark.slow
def test_importing_one_page_twenty_times_the_cap_stays_under_the_cap(tmp_path: Path) -> None:
    side = 22528  # 484 MiB of uint8 in one page: 20x the cap
    src = tmp_path / "page.tif"
    _write_one_tiled_page(src, side)
    code = _CHILD.format(root=str(ROOT), out=str(tmp_path), src=str(src))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert side * side / 2**20 >= 20 * CAP_MIB
    assert result["growth_mib"] < CAP_MIB, result
    assert result["levels"][0] == [1, side, side] and result["levels"][-1] == [1, 352, 352]
