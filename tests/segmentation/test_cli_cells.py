from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from segmentation.cli import main
from segmentation.core.metrics import instance_dice
from segmentation.core.phantom import key_slices, make_phantom

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cells")
    ph = make_phantom((16, 96, 96), seed=1, n_cells=4)
    paths = {name: d / f"{name}.tif" for name in ("image", "interior", "keys", "truth")}
    tifffile.imwrite(paths["image"], ph.image)
    tifffile.imwrite(paths["interior"], ph.interior.astype(np.uint8) * 255)
    tifffile.imwrite(paths["keys"], key_slices(ph.cells, every=8))
    tifffile.imwrite(paths["truth"], ph.cells)
    paths["dir"] = d
    return paths


@pytest.mark.parametrize("method", ["fusion", "flow", "interior"])
def test_it_writes_a_cell_volume_of_the_image_shape(files: dict[str, Path], method: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / f"cells_{method}.tif"
    rc = main(["cells", "--image", str(files["image"]), "--interior", str(files["interior"]),
               "--keys", str(files["keys"]), "--out", str(out), "--method", method, "--flow", "farneback"])
    assert rc == 0
    cells = tifffile.imread(out)
    assert cells.shape == tifffile.imread(files["image"]).shape
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == method and summary["cells"] == len(np.unique(cells)) - 1
    if method == "fusion":
        assert instance_dice(cells, tifffile.imread(files["truth"]))["mean"] > 0.9


def test_it_writes_zarr_when_asked(files: dict[str, Path]) -> None:
    import zarr

    out = files["dir"] / "cells.zarr"
    assert main(["cells", "--image", str(files["image"]), "--interior", str(files["interior"]),
                 "--keys", str(files["keys"]), "--out", str(out)]) == 0
    z = zarr.open(str(out), mode="r")
    assert z.shape == (16, 96, 96)
    assert int(np.asarray(z[...]).max()) >= 1


def test_it_exits_with_an_error_naming_the_mismatched_shape(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    small = files["dir"] / "small.tif"
    tifffile.imwrite(small, np.zeros((4, 8, 8), np.uint8), photometric="minisblack")
    rc = main(["cells", "--image", str(files["image"]), "--interior", str(small),
               "--keys", str(files["keys"]), "--out", str(files["dir"] / "x.tif")])
    assert rc == 2
    assert "(4, 8, 8)" in capsys.readouterr().err


def test_it_runs_as_a_module_from_the_shell(files: dict[str, Path]) -> None:
    out = files["dir"] / "shell.tif"
    proc = subprocess.run(
        [sys.executable, "-m", "segmentation.cli", "cells", "--image", str(files["image"]), "--interior",
         str(files["interior"]), "--keys", str(files["keys"]), "--out", str(out), "--progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "progress 1.00" in proc.stderr
    assert out.exists()
