"""The command line refuses what it cannot honour, plainly, and keeps the budgets it is given."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from segmentation.cli import build_parser, main

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli_strict")
    rng = np.random.default_rng(0)
    z, y, x = 6, 96, 96
    zz, yy, xx = np.mgrid[:z, :y, :x]
    mito = np.zeros((z, y, x), bool)
    for _ in range(12):
        cz, cy, cx = rng.integers(0, z), rng.integers(8, y - 8), rng.integers(8, x - 8)
        mito |= ((zz - cz) / 3) ** 2 + ((yy - cy) / 6) ** 2 + ((xx - cx) / 4) ** 2 <= 1
    img = np.clip(np.where(mito, 70, 170) + rng.normal(0, 10, mito.shape), 0, 255).astype(np.uint8)
    truth = np.where(mito, 2, 1).astype(np.uint8)
    sparse = np.zeros_like(truth)
    sparse[[1, 4]] = truth[[1, 4]]
    for name, a in (("image", img), ("truth", truth), ("sparse", sparse)):
        tifffile.imwrite(d / f"{name}.tif", a)
    return d


def test_evaluate_refuses_a_class_in_neither_file(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "--pred", str(files / "truth.tif"), "--truth", str(files / "truth.tif")]
    assert main(argv + ["--classes", "background=1,mitochondrion=2,nucleus=7"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "nucleus=7 is in neither --pred nor --truth" in out.err
    assert main(argv + ["--classes", "background=1,mitochondrion=2"]) == 0  # classes that are there still score
    assert json.loads(capsys.readouterr().out)["mitochondrion"]["dice"] == 1.0


@pytest.mark.parametrize("content", [b"", b"hello\n", b"\x00" * 4096, "tiff"], ids=["empty", "text", "zeros", "tiff"])
def test_predict_says_a_file_is_not_a_model_without_a_traceback(files: Path, capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path, content: bytes | str) -> None:
    model = files / "image.tif" if content == "tiff" else tmp_path / "model.pt"
    if content != "tiff":
        model.write_bytes(content)
    status = main(["predict", "--model", str(model), "--image", str(files / "image.tif"),
                   "--out", str(tmp_path / "pred.tif"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ") and "is not an emportal-resunet/1 model file" in err and "Traceback" not in err
    assert not (tmp_path / "pred.tif").exists()


@pytest.mark.slow
def test_train_minutes_is_the_whole_wall_time(files: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    started = time.perf_counter()
    status = main(["train", "--image", str(files / "image.tif"), "--labels", str(files / "sparse.tif"),
                   "--classes", "background=1,mitochondrion=2", "--minutes", "0.15", "--device", "cpu",
                   "--out", str(tmp_path / "m.pt")], started=started)
    seconds = time.perf_counter() - started
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] > 0 and (tmp_path / "m.pt").exists()
    assert seconds <= 9 * 1.25  # before: the validation, calibration and saving after the loop overran by 40-75 %
    assert summary["seconds"] == pytest.approx(seconds, abs=0.5)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_option_of_every_subcommand_has_help() -> None:
    missing = [(name, a.option_strings[0]) for name, sub in _subcommands().items()
               for a in sub._actions if a.option_strings and not a.help]
    assert missing == []


def test_every_subcommand_that_reports_progress_is_silenced_by_quiet() -> None:
    subcommands = _subcommands()
    assert {name for name, sub in subcommands.items() if "--quiet" in sub._option_string_actions} == \
        set(subcommands) - {"evaluate", "export"}  # these two have no progress to report


@pytest.mark.parametrize("command", ["train", "predict"])
def test_an_output_in_a_missing_folder_is_refused_before_any_work(files: Path, capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path, command: str) -> None:
    out = tmp_path / "missing" / "out.pt"
    started = time.perf_counter()
    argv = {"train": ["--labels", str(files / "sparse.tif"), "--minutes", "1"],
            "predict": ["--model", str(tmp_path / "nowhere.pt")]}[command]
    status = main([command, "--image", str(files / "image.tif"), "--out", str(out), "--device", "cpu", *argv])
    err = capsys.readouterr().err
    assert status == 2 and f"the folder {str(out.parent)!r} does not exist" in err
    assert time.perf_counter() - started < 5  # refused up front, not after a minute of training
    assert not out.parent.exists()
