"""Models travel: a model file keeps what it saw, and its ONNX export predicts as torch does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import zarr

from segmentation.core.classes import ClassSpec
from segmentation.core.modelfile import (
    ONNX_INPUT,
    Normalization,
    TrainedModel,
    export_onnx,
    labels_digest,
    load_model,
    save_model,
)
from segmentation.core.resunet import ResUNet, ResUNetConfig

torch.set_num_threads(1)


@pytest.fixture
def model() -> TrainedModel:
    torch.manual_seed(0)
    config = ResUNetConfig(in_slices=3, out_channels=2, base_width=4, depth=3)
    net = ResUNet(config)
    for p in net.parameters():  # trained-like weights: BatchNorm statistics away from the defaults too
        p.data.normal_(0, 0.3)
    for name, buf in net.named_buffers():
        if "running_var" in name:
            buf.data.uniform_(0.5, 2.0)
        elif "running_mean" in name:
            buf.data.normal_(0, 0.2)
    net.eval()
    classes = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3}, {"nucleus": None, "nucleolus": "nucleus"})
    meta = {"thresholds": {"nucleus": 0.4, "nucleolus": 0.6},
            "provenance": {"labels_sha256": "ab" * 32, "project": "Bx1"}}
    return TrainedModel(net=net, config=config, classes=classes, normalization=Normalization(lo=30.0, hi=210.0),
                        meta=meta, scale=2)


def _torch_probabilities(model: TrainedModel, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(model.normalization.apply(image))
        return torch.sigmoid(model.net(x)).numpy()


def test_onnx_and_torch_predictions_agree(model: TrainedModel, tmp_path: Path) -> None:
    path = export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for shape in ((1, 3, 32, 32), (2, 3, 64, 48)):  # any batch and any size the network divides
        image = rng.uniform(0, 255, shape).astype(np.float32)
        got = session.run(None, {ONNX_INPUT: image})[0]
        expected = _torch_probabilities(model, image)
        assert got.shape == (shape[0], 2, *shape[2:])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        thresholds = np.array([0.4, 0.6])[None, :, None, None]
        assert np.array_equal(got > thresholds, expected > thresholds)
        assert 0.05 < (expected > thresholds).mean() < 0.95  # the masks compared are not trivially empty or full


def test_the_onnx_file_carries_classes_thresholds_scale_and_provenance(model: TrainedModel, tmp_path: Path) -> None:
    graph = onnx.load(str(export_onnx(model, tmp_path / "m.onnx")))
    meta = {p.key: json.loads(p.value) for p in graph.metadata_props}
    assert meta["classes"]["values"] == {"background": 1, "nucleus": 2, "nucleolus": 3}
    assert meta["classes"]["parents"]["nucleolus"] == "nucleus"
    assert meta["heads"] == ["nucleus", "nucleolus"]
    assert meta["thresholds"] == {"nucleus": 0.4, "nucleolus": 0.6}
    assert (meta["scale"], meta["in_slices"], meta["divisor"]) == (2, 3, 4)
    assert meta["normalization"]["lo"] == 30.0 and meta["provenance"]["labels_sha256"] == "ab" * 32
    assert not list(tmp_path.glob("*.tmp"))


def test_a_model_file_keeps_its_provenance_and_predicts_the_same_after_loading(model: TrainedModel,
                                                                              tmp_path: Path) -> None:
    loaded = load_model(save_model(tmp_path / "m.pt", model))
    assert loaded.meta["provenance"] == model.meta["provenance"]
    assert loaded.classes == model.classes and loaded.scale == 2
    image = np.random.default_rng(2).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(_torch_probabilities(loaded, image), _torch_probabilities(model, image))


def test_the_labels_digest_names_the_voxels_not_the_container(tmp_path: Path) -> None:
    labels = np.random.default_rng(3).integers(0, 4, (20, 33, 17)).astype(np.uint16)
    stored = zarr.create_array(tmp_path / "l.zarr", shape=labels.shape, dtype=labels.dtype, chunks=(3, 8, 8))
    stored[...] = labels
    assert labels_digest(stored) == labels_digest(labels) == labels_digest(labels, slab=7)
    changed = labels.copy()
    changed[19, 32, 16] += 1
    assert labels_digest(changed) != labels_digest(labels)
    assert labels_digest(labels.astype(np.uint8)) != labels_digest(labels)  # the dtype counts
