"""``python -m segmentation.cli features``: CSV, XLSX and Parquet reports and GLB meshes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest
import tifffile

from segmentation.cli import main
from segmentation.core.features import COLUMNS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def volumes(tmp_path: Path) -> dict[str, Path]:
    shape = (8, 40, 40)
    cells = np.zeros(shape, np.uint16)
    cells[:, 2:38, 2:19] = 1
    cells[:, 2:38, 21:38] = 2
    labels = np.zeros(shape, np.uint8)
    labels[1:7, 8:30, 4:16] = 1
    labels[3:5, 14:20, 8:12] = 2
    labels[2:4, 5:9, 24:34] = 3
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    paths = {}
    for name, a in (("image", image), ("labels", labels), ("cells", cells)):
        paths[name] = tmp_path / f"{name}.tif"
        tifffile.imwrite(paths[name], a, compression="zlib" if name == "image" else None)
    return paths


def args(v: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["features", "--image", str(v["image"]), "--labels", str(v["labels"]), "--cells", str(v["cells"]),
            "--voxel-size-nm", "10", "10", "10", "--out", str(out), "--quiet", *extra]


def test_it_writes_one_csv_row_per_cell_with_the_required_columns(volumes: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    assert main(args(volumes, out)) == 0
    table = pd.read_csv(out)
    assert table["cell_id"].tolist() == [1, 2]
    assert list(table.columns) == list(COLUMNS)
    assert table.loc[0, "nucleus_volume_um3"] == pytest.approx(6 * 22 * 12 * 1e3 / 1e9)
    assert table.loc[1, "nucleus_count"] == 0 and table.loc[1, "mitochondrion_count"] == 1


def test_it_writes_xlsx_with_a_sheet_explaining_every_column(volumes: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    assert main(args(volumes, out)) == 0
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) == {"cells", "columns"}
    assert sheets["columns"]["column"].tolist() == sheets["cells"].columns.tolist()
    assert sheets["columns"]["unit"].notna().all() and sheets["columns"]["description"].notna().all()
    assert len(sheets["cells"]) == 2


def test_it_writes_parquet_that_reads_back_equal_to_the_csv(volumes: dict[str, Path], tmp_path: Path) -> None:
    assert main(args(volumes, tmp_path / "r.parquet")) == 0
    assert main(args(volumes, tmp_path / "r.csv")) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "r.parquet"), pd.read_csv(tmp_path / "r.csv"), check_dtype=False, rtol=1e-12
    )


def test_it_names_columns_after_the_classes_given(volumes: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert main(args(volumes, out, "--classes", "background=9,nucleus=1,nucleolus=2")) == 0
    table = pd.read_csv(out)
    assert "nucleolus_fenestrated_pct" in table.columns and "mitochondrion_count" not in table.columns


def test_it_writes_one_glb_scene_per_cell_when_asked(volumes: dict[str, Path], tmp_path: Path) -> None:
    import trimesh

    assert main(args(volumes, tmp_path / "r.csv", "--meshes", str(tmp_path / "meshes"))) == 0
    scene = cast(trimesh.Scene, trimesh.load(tmp_path / "meshes" / "cell_1.glb"))
    assert {"cell", "nucleus", "nucleolus"} <= set(scene.geometry)
    assert (tmp_path / "meshes" / "cell_2.glb").exists()


def test_it_exits_2_with_a_message_on_a_bad_suffix_or_missing_file(
    volumes: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(volumes, tmp_path / "r.json")) == 2
    assert "r.json" in capsys.readouterr().err
    volumes["cells"] = tmp_path / "nope.tif"
    assert main(args(volumes, tmp_path / "r.csv")) == 2
    assert "nope.tif" in capsys.readouterr().err


def test_it_runs_as_a_module_and_reports_progress(volumes: dict[str, Path], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "segmentation.cli", *args(volumes, tmp_path / "r.csv")[:-1]]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2/2 cells" in done.stderr and (tmp_path / "r.csv").exists()
