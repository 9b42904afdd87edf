from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
import zarr

from segmentation.cli import main
from segmentation.core.modelfile import load_model

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine

FAST = ["--width", "8", "--depth", "3", "--patch", "32", "--batch", "4", "--device", "cpu", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    z, y, x = 5, 48, 48
    zz, yy, xx = np.mgrid[:z, :y, :x]
    mito = np.zeros((z, y, x), bool)
    for _ in range(10):
        cz, cy, cx = rng.integers(0, z), rng.integers(4, y - 4), rng.integers(4, x - 4)
        mito |= ((zz - cz) / 2.5) ** 2 + ((yy - cy) / 5) ** 2 + ((xx - cx) / 4) ** 2 <= 1
    img = np.clip(np.where(mito, 80, 170) + rng.normal(0, 10, mito.shape), 0, 255).astype(np.uint8)
    truth = np.where(mito, 2, 1).astype(np.uint8)
    sparse = np.zeros_like(truth)
    sparse[[1, 3]] = truth[[1, 3]]
    for name, a in (("image", img), ("truth", truth), ("sparse", sparse)):
        tifffile.imwrite(d / f"{name}.tif", a)
    return d


def run(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_it_trains_predicts_evaluates_and_suggests_from_the_command_line(files, capsys):
    d = files
    summary = json.loads(run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", d / "m.pt",
                             "--classes", "background=1,mitochondrion=2", "--minutes", "1", "--max-steps", "150", *FAST))
    assert summary["val_slices"] and summary["steps"] > 0
    run(capsys, "predict", "--model", d / "m.pt", "--image", d / "image.tif", "--out", d / "pred.tif", "--device", "cpu", "--window", "32")
    pred = tifffile.imread(d / "pred.tif")
    assert pred.shape == (5, 48, 48) and set(np.unique(pred)) <= {1, 2}
    scores = json.loads(run(capsys, "evaluate", "--pred", d / "pred.tif", "--truth", d / "truth.tif",
                            "--classes", "background=1,mitochondrion=2", "--slices", "4:5"))
    assert scores["mitochondrion"]["dice"] > 0.7 and 0 <= scores["mitochondrion"]["iou"] <= 1
    regions = json.loads(run(capsys, "suggest", "--model", d / "m.pt", "--image", d / "image.tif", "--labels", d / "sparse.tif",
                             "--k", "3", "--tile", "16", "--device", "cpu"))
    assert len(regions) == 3 and all(r["z"] not in (1, 3) for r in regions)
    assert regions[0]["score"] >= regions[1]["score"]
    suggest = ["suggest", "--model", d / "m.pt", "--image", d / "image.tif", "--k", "3", "--tile", "16", "--device", "cpu"]
    assert len(json.loads(run(capsys, *suggest, "--voxel-size-nm", "40", "5.9", "5.9"))) == 3
    assert main([str(a) for a in suggest + ["--voxel-size-nm", "0", "5.9", "5.9"]]) == 2
    assert "--voxel-size-nm must be positive" in capsys.readouterr().err

    # --init fine-tunes from the saved weights: with lr 0 the convolutions stay as they were
    run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", d / "m2.pt", "--init", d / "m.pt",
        "--minutes", "1", "--max-steps", "1", *FAST[:-2], "--lr", "0")
    a = torch.load(d / "m.pt", weights_only=True)["state_dict"]
    b = torch.load(d / "m2.pt", weights_only=True)["state_dict"]
    assert torch.equal(a["encoder.0.conv1.weight"], b["encoder.0.conv1.weight"])
    # a first model keeps its best-validated weights, a fine-tune its last, as the app's Retrain
    assert load_model(d / "m.pt").meta["select_best"] is True
    assert load_model(d / "m2.pt").meta["select_best"] is False


def test_it_predicts_zarr_to_zarr(files, capsys, tmp_path):
    d = files
    run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", tmp_path / "m.pt",
        "--minutes", "1", "--max-steps", "2", *FAST)
    src = zarr.create_array(tmp_path / "img.zarr", shape=(5, 48, 48), dtype=np.uint8, chunks=(2, 16, 16))
    src[...] = tifffile.imread(d / "image.tif")
    predict = ["predict", "--model", tmp_path / "m.pt", "--image", tmp_path / "img.zarr", "--out", tmp_path / "p.zarr",
               "--device", "cpu", "--window", "32", "--block", "2", "16", "16"]
    # a plain zarr states no voxel size, and an OME-Zarr must: refused before any work
    assert main([str(a) for a in predict]) == 2
    assert "pass --voxel-size-nm" in capsys.readouterr().err and not (tmp_path / "p.zarr").exists()
    run(capsys, *predict, "--voxel-size-nm", "40", "6", "6")
    run(capsys, "predict", "--model", tmp_path / "m.pt", "--image", d / "image.tif", "--out", tmp_path / "p.tif",
        "--device", "cpu", "--window", "32", "--block", "2", "16", "16")
    expected = tifffile.imread(tmp_path / "p.tif")
    assert np.array_equal(zarr.open_array(tmp_path / "p.zarr" / "labels" / "prediction" / "0", mode="r")[...], expected)
    assert np.array_equal(zarr.open_array(tmp_path / "p.zarr" / "0", mode="r")[...], src[...])
    run(capsys, *predict, "--voxel-size-nm", "40", "6", "6")  # again over the last one: replaced whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".p.zarr")) == []


def test_a_zarr_prediction_is_an_ome_zarr_image_with_a_labels_group_that_ome_zarr_py_opens(files, capsys, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    d = files
    run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", tmp_path / "m.pt",
        "--classes", "background=1,mitochondrion=2", "--minutes", "1", "--max-steps", "2", *FAST)
    run(capsys, "predict", "--model", tmp_path / "m.pt", "--image", d / "image.tif", "--out", tmp_path / "p.zarr",
        "--device", "cpu", "--window", "32", "--voxel-size-nm", "40", "6", "6")
    nodes = list(Reader(parse_url(str(tmp_path / "p.zarr")))())
    image = next(n for n in nodes if any(isinstance(s, Multiscales) for s in n.specs)
                 and not any(isinstance(s, Label) for s in n.specs))
    labels = [n for n in nodes if any(isinstance(s, Label) for s in n.specs)]
    assert np.array_equal(np.asarray(image.data[0]), tifffile.imread(d / "image.tif"))
    assert image.metadata["coordinateTransformations"][0][0]["scale"] == [40.0, 6.0, 6.0]
    assert [n.metadata["name"] for n in labels] == ["prediction"]
    assert labels[0].metadata["properties"][2]["name"] == "mitochondrion"
    assert labels[0].metadata["properties"][1]["name"] == "background"
    assert set(np.unique(np.asarray(labels[0].data[0]))) <= {1, 2}


def test_it_prints_per_cell_dice_for_instances(tmp_path, capsys):
    truth = np.zeros((2, 8, 8), np.uint16)
    truth[:, :, :4], truth[:, :, 4:] = 1, 2
    pred = truth.copy()
    pred[:, :, 3] = 2
    tifffile.imwrite(tmp_path / "t.tif", truth)
    tifffile.imwrite(tmp_path / "p.tif", pred)
    res = json.loads(run(capsys, "evaluate", "--pred", tmp_path / "p.tif", "--truth", tmp_path / "t.tif", "--instances"))
    assert set(res["cells"]) == {"1", "2"} and res["cells"]["1"] == pytest.approx(2 * 48 / (64 + 48))
    assert res["mean"] == pytest.approx((res["cells"]["1"] + res["cells"]["2"]) / 2)


def test_it_reports_a_missing_file_as_an_error(tmp_path, capsys):
    assert main(["evaluate", "--pred", str(tmp_path / "nope.tif"), "--truth", str(tmp_path / "nope.tif")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_prediction_tiff_keeps_the_images_voxel_size(files, capsys, tmp_path):
    from annotations.imaging.readers import open_source

    d = files
    run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", tmp_path / "m.pt",
        "--minutes", "1", "--max-steps", "1", *FAST)
    calibrated = tmp_path / "calibrated.tif"
    tifffile.imwrite(calibrated, tifffile.imread(d / "image.tif"), imagej=True, resolution=(1 / 0.0059, 1 / 0.0059),
                     metadata={"spacing": 0.04, "unit": "um", "axes": "ZYX"})
    for image, expected in ((calibrated, (40.0, 5.9, 5.9)), (d / "image.tif", None)):
        out = tmp_path / f"pred-{image.stem}.tif"
        run(capsys, "predict", "--model", tmp_path / "m.pt", "--image", image, "--out", out, "--device", "cpu",
            "--window", "32")
        with open_source(out) as pred:
            assert pred.shape == (5, 48, 48) and pred.voxel_size_nm == (pytest.approx(expected) if expected else None)


def _calibrated(path, image, voxel_nm=(40.0, 5.9, 5.9)):
    """An ImageJ TIFF stating its voxel size, as Fiji writes it."""
    z, y, _ = (v / 1000 for v in voxel_nm)
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / y, 1 / y), metadata={"spacing": z, "unit": "um", "axes": "ZYX"})
    return path


def test_train_without_flags_chooses_the_settings_from_the_voxel_size_the_tiff_states(files, capsys, tmp_path):
    d = files
    image = _calibrated(tmp_path / "calibrated.tif", tifffile.imread(d / "image.tif"))
    tiny = ["--width", "8", "--depth", "3", "--device", "cpu", "--minutes", "1", "--max-steps", "2", "--quiet"]
    summary = json.loads(run(capsys, "train", "--image", image, "--labels", d / "sparse.tif", "--out", tmp_path / "m.pt", *tiny))
    assert (summary["scale"], summary["patch"], summary["batch"], summary["context"], summary["tta"]) == (2, 96, 4, 1, True)
    meta = torch.load(tmp_path / "m.pt", weights_only=True)["meta"]
    assert meta["voxel_size_nm"] == pytest.approx([40.0, 5.9, 5.9]) and meta["defaults"]["scale"] == 2 and meta["tta"] is True
    assert meta["overrides"] == {} and (meta["ema"], meta["elastic"], meta["in_slices"]) == (0.99, 0.0, 1)

    # an explicit flag still wins, and is recorded as such
    summary = json.loads(run(capsys, "train", "--image", image, "--labels", d / "sparse.tif", "--out", tmp_path / "m1.pt",
                             "--scale", "1", "--patch", "32", *tiny))
    assert (summary["scale"], summary["patch"]) == (1, 32)
    assert torch.load(tmp_path / "m1.pt", weights_only=True)["meta"]["overrides"] == {"patch": 32, "scale": 1}

    # a file without a voxel size: --voxel-size-nm gives it (near-isotropic: five input slices, full resolution)
    summary = json.loads(run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", tmp_path / "m5.pt",
                             "--voxel-size-nm", "5", "5", "5", *tiny))
    assert (summary["scale"], summary["context"], summary["patch"]) == (1, 5, 160)
    assert main(["train", "--image", str(d / "image.tif"), "--labels", str(d / "sparse.tif"), "--out", str(tmp_path / "x.pt"),
                 "--voxel-size-nm", "40", "0", "5", *tiny]) == 2
    assert "voxel_size_nm" in capsys.readouterr().err


def test_predict_without_flags_applies_what_the_model_was_trained_with(files, capsys, tmp_path):
    from segmentation.core.classes import ClassSpec
    from segmentation.core.defaults import defaults_meta, training_defaults
    from segmentation.core.inference import predict_probabilities, predict_volume
    from segmentation.core.modelfile import Normalization, TrainedModel, save_model
    from segmentation.core.resunet import ResUNet, ResUNetConfig

    image = tifffile.imread(files / "image.tif")
    torch.manual_seed(0)
    cfg = ResUNetConfig(in_slices=5, out_channels=1, base_width=4, depth=2)  # untrained: flips change its output
    chosen = training_defaults((40.0, 5.9, 5.9), "cpu")
    model = TrainedModel(ResUNet(cfg).eval(), cfg, ClassSpec.build({"background": 1, "mitochondrion": 2}),
                         Normalization(0.0, 255.0), scale=chosen.scale, meta=defaults_meta(chosen))
    probs = predict_probabilities(model, image, device="cpu", window=32)  # cut at its median: half the voxels each way
    model.meta["thresholds"] = {"mitochondrion": float(np.median(probs))}
    save_model(tmp_path / "m.pt", model)
    common = ["--model", tmp_path / "m.pt", "--image", files / "image.tif", "--device", "cpu", "--window", "32", "--no-postprocess", "--quiet"]
    run(capsys, "predict", *common, "--out", tmp_path / "stored.tif")
    run(capsys, "predict", *common, "--out", tmp_path / "plain.tif", "--no-tta")
    with_tta = predict_volume(model, image, device="cpu", window=32, tta=True, postprocess=None)
    without = predict_volume(model, image, device="cpu", window=32, tta=False, postprocess=None)
    assert not np.array_equal(with_tta, without)  # the test can tell them apart
    assert np.array_equal(tifffile.imread(tmp_path / "stored.tif"), with_tta)
    assert np.array_equal(tifffile.imread(tmp_path / "plain.tif"), without)


def test_a_trained_model_names_its_labels_and_exports_to_onnx(files, capsys, tmp_path):
    import onnxruntime as ort

    from segmentation.core.modelfile import labels_digest, load_model

    d = files
    run(capsys, "train", "--image", d / "image.tif", "--labels", d / "sparse.tif", "--out", tmp_path / "m.pt",
        "--classes", "background=1,mitochondrion=2", "--minutes", "1", "--max-steps", "2", *FAST)
    model = load_model(tmp_path / "m.pt")
    assert model.meta["provenance"]["labels_sha256"] == labels_digest(tifffile.imread(d / "sparse.tif"))
    summary = json.loads(run(capsys, "export", "--model", tmp_path / "m.pt", "--onnx", tmp_path / "m.onnx"))
    assert summary["heads"] == ["mitochondrion"] and summary["provenance"] == model.meta["provenance"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    image = tifffile.imread(d / "image.tif")[None, :model.config.in_slices, :32, :32].astype(np.float32)
    with torch.no_grad():
        expected = torch.sigmoid(model.net(torch.from_numpy(model.normalization.apply(image)))).numpy()
    np.testing.assert_allclose(session.run(None, {"image": image})[0], expected, atol=1e-5)
    assert main(["export", "--model", str(d / "image.tif"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "not an emportal-resunet/1 model file" in capsys.readouterr().err
