"""big_interactive.py --keep: a generated image is made once, reused by later runs, never written by them."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr

from benchmarks.big_interactive import _image_store

SHAPE = (4, 64, 64)


def test_a_kept_image_is_generated_once_and_linked_into_each_runs_store(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    first = _image_store(SHAPE, tmp_path / "run1.ome.zarr", keep)
    second = _image_store(SHAPE, tmp_path / "run2.ome.zarr", keep)
    assert not first["reused"] and second["reused"] and second["gib"] == first["gib"]
    cached = keep / "bigvolume-4x64x64.ome.zarr"
    assert (tmp_path / "run2.ome.zarr" / "0").resolve() == (cached / "0").resolve()
    (tmp_path / "run2.ome.zarr" / "labels").mkdir()  # what the app adds goes to the run's store only
    assert not (cached / "labels").exists()
    assert np.array_equal(zarr.open_array(str(tmp_path / "run1.ome.zarr" / "0"), mode="r")[:],
                          zarr.open_array(str(cached / "0"), mode="r")[:])


def test_a_kept_image_without_its_report_is_partial_and_made_again(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    _image_store(SHAPE, tmp_path / "run1.ome.zarr", keep)
    (keep / "bigvolume-4x64x64.ome.zarr.json").unlink()  # as if the generator had been stopped before the end
    shutil.rmtree(keep / "bigvolume-4x64x64.ome.zarr" / "0")
    again = _image_store(SHAPE, tmp_path / "run2.ome.zarr", keep)
    assert not again["reused"] and (keep / "bigvolume-4x64x64.ome.zarr" / "0").is_dir()


def test_without_keep_the_image_is_generated_into_the_store(tmp_path: Path) -> None:
    got = _image_store(SHAPE, tmp_path / "run.ome.zarr", None)
    assert not got["reused"] and not (tmp_path / "run.ome.zarr" / "0").is_symlink()
