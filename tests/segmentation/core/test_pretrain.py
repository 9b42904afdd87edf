from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import zarr

from segmentation.core.encoder import ENCODER_PREFIX, PretrainedEncoder, load_encoder, save_encoder
from segmentation.core.modelfile import load_model, save_model
from segmentation.core.pretrain import PretrainConfig, corrupt, image_fingerprint, pretrain
from segmentation.core.training import TrainConfig, train
from tests.segmentation.core.synthetic import blobs

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine
CLASSES = {"background": 1, "mito": 2}
TINY = TrainConfig(patch=32, batch=4, base_width=8, depth=3)


class CountingReads:
    """An array-like that counts the voxels read through it."""

    def __init__(self, array: Any) -> None:
        self.array, self.shape, self.dtype, self.read = array, array.shape, array.dtype, 0

    def __getitem__(self, key: Any) -> np.ndarray:
        out = np.asarray(self.array[key])
        self.read += out.size
        return out


def sparse(truth: np.ndarray, zs: list[int]) -> np.ndarray:
    lab = np.zeros_like(truth)
    lab[zs] = truth[zs]
    return lab


def test_it_returns_only_encoder_weights_with_the_volumes_it_read():
    image, _ = blobs((6, 64, 64))
    enc = pretrain([image], names=["volume 7"], config=PretrainConfig.like(TINY, max_steps=3), device="cpu")
    assert enc.state and all(k.startswith(ENCODER_PREFIX) for k in enc.state)
    assert (enc.config.in_slices, enc.config.base_width, enc.config.depth, enc.scale) == (1, 8, 3, 1)
    source = enc.meta["sources"][0]
    assert source["name"] == "volume 7" and source["shape"] == [6, 64, 64]
    assert source["fingerprint"] == image_fingerprint(image)
    assert enc.meta["objective"] == "masked" and enc.meta["steps"] == 3 and enc.meta["stopped"] == "max_steps"


def test_it_reads_patches_of_a_large_zarr_volume_never_the_whole_of_it():
    image = np.random.default_rng(0).integers(0, 255, (64, 512, 512), dtype=np.uint8)
    store = zarr.create_array(store=zarr.storage.MemoryStore(), shape=image.shape, chunks=(1, 128, 128), dtype=image.dtype)
    store[:] = image
    counted = CountingReads(store)
    pretrain([counted], config=PretrainConfig.like(TINY, scale=2, max_steps=4), device="cpu")
    # the normalisation's sample (16 slices at most), the fingerprint's and 16 patches of 64²
    assert 0 < counted.read < image.size / 3


def test_it_learns_to_fill_masked_blocks_from_their_surroundings():
    image, _ = blobs((8, 96, 96))
    enc = pretrain([image], config=PretrainConfig.like(TINY, max_steps=80, lr=3e-3), device="cpu")
    assert enc.meta["loss_last"] < 0.7 * enc.meta["loss_first"]


@pytest.mark.parametrize("objective", ["masked", "denoise"])
def test_it_corrupts_the_input_and_weighs_the_loss_where_it_corrupted(objective):
    rng = np.random.default_rng(0)
    clean = rng.uniform(-0.5, 0.5, (3, 32, 32)).astype(np.float32)
    noisy, weight = corrupt(clean, PretrainConfig(objective=objective, mask_block=4), rng)
    changed = np.any(noisy != clean, axis=0)
    assert noisy.shape == clean.shape and weight.shape == (1, 32, 32)
    if objective == "masked":
        assert 0.2 < weight.mean() < 0.8 and np.array_equal(changed, weight[0] > 0)
        assert np.all(noisy[:, weight[0] > 0] == 0)  # every input slice masked alike
    else:
        assert weight.min() == 1 and changed.all()


def test_an_encoder_file_round_trips_and_refuses_a_model_file(tmp_path):
    image, truth = blobs((6, 64, 64))
    enc = pretrain([image], config=PretrainConfig.like(TINY, max_steps=2), device="cpu")
    back = load_encoder(save_encoder(tmp_path / "enc.pt", enc))
    assert back.meta["sources"] == enc.meta["sources"] and back.scale == enc.scale
    assert all(torch.equal(back.state[k], v) for k, v in enc.state.items())
    model = train(image, sparse(truth, [2]), classes=CLASSES, minutes=1, device="cpu",
                  config=TrainConfig(patch=32, batch=4, base_width=8, depth=3, max_steps=1, calibrate=False))
    save_model(tmp_path / "model.pt", model.model)
    with pytest.raises(ValueError, match="emportal-encoder"):
        load_encoder(tmp_path / "model.pt")


def test_training_starts_its_encoder_from_the_pretrained_weights_and_records_them(tmp_path):
    image, truth = blobs((6, 64, 64))
    enc = pretrain([image], names=["vol"], config=PretrainConfig.like(TINY, max_steps=3), device="cpu")
    path = save_encoder(tmp_path / "enc.pt", enc)
    frozen = TrainConfig(patch=32, batch=4, base_width=8, depth=3, max_steps=2, lr=0.0, weight_decay=0.0, ema=0.0)
    result = train(image, sparse(truth, [1, 4]), classes=CLASSES, minutes=1, device="cpu", config=frozen, encoder=path)
    weights = result.model.net.state_dict()
    convs = [k for k in enc.state if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert convs and all(torch.equal(weights[k], enc.state[k]) for k in convs)
    recorded = load_model(save_model(tmp_path / "m.pt", result.model)).meta["encoder"]
    assert recorded["file"] == str(path) and recorded["sources"][0]["name"] == "vol" and recorded["steps"] == 3
    fresh = train(image, sparse(truth, [1, 4]), classes=CLASSES, minutes=1, device="cpu", config=frozen)
    assert fresh.meta["encoder"] is None
    assert not torch.equal(fresh.model.net.state_dict()[convs[0]], enc.state[convs[0]])


def test_training_refuses_an_encoder_of_another_shape_or_with_a_model_to_fine_tune():
    image, truth = blobs((6, 64, 64))
    enc = pretrain([image], config=PretrainConfig.like(TINY, max_steps=1), device="cpu")
    wider = TrainConfig(patch=32, batch=4, base_width=16, depth=3, max_steps=1)
    with pytest.raises(ValueError, match="does not fit"):
        train(image, sparse(truth, [2]), classes=CLASSES, minutes=1, device="cpu", config=wider, encoder=enc)
    base = train(image, sparse(truth, [2]), classes=CLASSES, minutes=1, device="cpu",
                 config=TrainConfig(patch=32, batch=4, base_width=8, depth=3, max_steps=1, calibrate=False))
    with pytest.raises(ValueError, match="not both"):
        train(image, sparse(truth, [2]), classes=CLASSES, minutes=1, device="cpu", init=base.model,
              config=TINY, encoder=PretrainedEncoder(enc.state, enc.config, enc.scale))
