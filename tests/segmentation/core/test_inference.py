from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import zarr

from segmentation.core.classes import ClassSpec
from segmentation.core.inference import (
    PostProcess,
    block_regions,
    postprocess_masks,
    predict_probabilities,
    predict_volume,
)
from segmentation.core.modelfile import Normalization, TrainedModel
from segmentation.core.resunet import ResUNet, ResUNetConfig

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine


def random_model(in_slices=1, heads=("mito",), seed=0) -> TrainedModel:
    """An untrained net with randomised BN statistics, so outputs vary over the image."""
    torch.manual_seed(seed)
    config = ResUNetConfig(in_slices=in_slices, out_channels=len(heads), base_width=4, depth=3)
    net = ResUNet(config)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        net.head[-1].weight.mul_(30.0)  # spread the probabilities over (0, 1)
    net.eval()
    values = {"background": 1, **{h: i + 2 for i, h in enumerate(heads)}}
    return TrainedModel(net, config, ClassSpec.build(values), Normalization(lo=0.0, hi=255.0))


def volume(shape=(5, 60, 76), seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


class CountingArray:
    """Array-like that records the largest read, to check memory is bounded by the block."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.largest = data, data.shape, data.dtype, 0

    def __getitem__(self, key):
        out = self.data[key]
        self.largest = max(self.largest, out.size)
        return out


@pytest.mark.parametrize("in_slices", [1, 3, 5])
def test_it_predicts_the_same_blockwise_as_in_one_piece(in_slices):
    model, img = random_model(in_slices), volume((5, 96, 96))
    whole = predict_probabilities(model, img, block=(5, 96, 96), window=64, overlap=16, device="cpu")
    parts = predict_probabilities(model, img, block=(2, 40, 32), window=64, overlap=16, device="cpu")
    assert whole.shape == (1, 5, 96, 96) and whole.std() > 0.02  # not a comparison of constants
    diff = np.abs(parts - whole)
    assert diff.mean() < 0.01 * whole.std() and diff.max() < 0.02  # only window-edge effects differ
    sure = np.abs(whole - 0.5) > 0.02  # a random net leaves some voxels at 0.5 +- edge effects
    assert sure.mean() > 0.9 and np.array_equal((parts > 0.5)[sure], (whole > 0.5)[sure])


def test_it_mixes_each_slice_with_its_neighbours_by_the_models_weights_whole_or_blockwise():
    model, img = random_model(heads=("mito", "er")), volume((5, 64, 64))
    plain = predict_probabilities(model, img, window=64, device="cpu")
    model.meta["z_blend"] = {"mito": 0.3}  # "er" not named: left alone
    whole = predict_probabilities(model, img, block=(5, 64, 64), window=64, device="cpu")
    parts = predict_probabilities(model, img, block=(2, 64, 64), window=64, device="cpu")
    padded = np.concatenate([plain[0, :1], plain[0], plain[0, -1:]])  # the volume's edges repeat
    expected = 0.4 * padded[1:-1] + 0.3 * (padded[:-2] + padded[2:])
    assert np.abs(whole[0] - plain[0]).max() > 0.05  # the mixing did something
    assert np.allclose(whole[0], expected, atol=1e-5) and np.allclose(parts, whole, atol=1e-5)
    assert np.array_equal(whole[1], plain[1])
    assert np.array_equal(predict_volume(model, img, window=64, device="cpu", postprocess=None, z_blend={}),
                          predict_volume(dataclasses.replace(model, meta={}), img, window=64, device="cpu", postprocess=None))


def test_it_blends_overlapping_windows_smoothly():
    # On a flat image any variation comes from window edges (zero padding); blending hides it.
    model, img = random_model(), np.full((1, 64, 96), 128, np.uint8)
    def seams(overlap):
        p = predict_probabilities(model, img, window=32, overlap=overlap, device="cpu")[0, 0, 16:48]
        return np.abs(np.diff(p[:, 8:88], axis=1)).sum()
    assert seams(16) < 0.8 * seams(0)


def test_it_reads_no_more_than_a_block_and_its_halo():
    model = random_model(in_slices=3)
    src = CountingArray(volume((6, 128, 128)))
    predict_volume(model, src, block=(2, 32, 32), window=32, overlap=8, device="cpu")
    assert 0 < src.largest <= (2 + 2) * (32 + 2 * 8) ** 2


def test_it_streams_from_and_to_zarr_like_numpy(tmp_path):
    model, img = random_model(heads=("mito", "lysosome")), volume((4, 40, 48))
    src = zarr.create_array(tmp_path / "img.zarr", shape=img.shape, dtype=img.dtype, chunks=(2, 16, 16))
    src[...] = img
    out = zarr.create_array(tmp_path / "pred.zarr", shape=img.shape, dtype=np.uint8, chunks=(2, 16, 16))
    predict_volume(model, src, out=out, block=(2, 16, 16), window=32, overlap=8, device="cpu")
    expected = predict_volume(model, img, block=(2, 16, 16), window=32, overlap=8, device="cpu")
    assert np.array_equal(out[...], expected)
    assert set(np.unique(expected)) <= {1, 2, 3}


def test_it_writes_background_where_no_class_is_predicted():
    model = random_model()
    with torch.no_grad():
        model.net.head[-1].bias.fill_(-50.0)
    pred = predict_volume(model, volume((2, 32, 32)), window=32, device="cpu")
    assert pred.dtype == np.uint8 and np.all(pred == 1)


def test_it_returns_a_2d_prediction_for_a_2d_image():
    model = random_model()
    pred = predict_volume(model, volume((1, 40, 40))[0], window=32, overlap=8, device="cpu")
    assert pred.shape == (40, 40)


def test_it_averages_flips_into_valid_probabilities():
    model, img = random_model(), volume((1, 32, 32))
    plain = predict_probabilities(model, img, window=32, device="cpu")
    tta = predict_probabilities(model, img, window=32, device="cpu", tta=True)
    assert tta.shape == plain.shape and 0 <= tta.min() and tta.max() <= 1
    assert not np.allclose(tta, plain)


def test_it_fills_nucleus_holes_but_keeps_nucleolar_fenestrations():
    spec = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3})
    ring = np.zeros((1, 20, 20), bool)
    ring[0, 4:16, 4:16] = True
    ring[0, 8:12, 8:12] = False
    masks = np.stack([ring, ring])
    out = postprocess_masks(masks, spec, PostProcess(default_min_size=0))
    assert out[0, 0, 10, 10] and not out[1, 0, 10, 10]


def test_it_drops_small_objects_except_where_they_touch_another_block():
    spec = ClassSpec.build({"background": 1, "mito": 2})
    m = np.zeros((1, 1, 20, 20), bool)
    m[0, 0, 5:7, 5:7] = True       # 4 px, inside
    m[0, 0, 0:2, 10:12] = True     # 4 px, on the top edge
    post = PostProcess(default_min_size=10)
    alone = postprocess_masks(m, spec, post)
    inner_top = postprocess_masks(m, spec, post, inner_edges=(True, False, False, False))
    assert not alone.any()
    assert inner_top[0, 0, 0, 10] and not inner_top[0, 0, 5, 5]


def test_it_keeps_objects_as_small_as_those_the_model_was_taught():
    spec = ClassSpec.build({"background": 1, "mito": 2, "lysosome": 3})
    m = np.zeros((2, 1, 20, 20), bool)
    m[:, 0, 5:8, 5:8] = True  # 9 px of each class
    taught = PostProcess(default_min_size=16).taught({"min_object_px": {"lysosome": 4, "mito": 100}})
    assert taught.min_size == {"lysosome": 4, "mito": 16}  # strokes and cut objects lower the floor, never raise it
    out = postprocess_masks(m, spec, taught)
    assert out[1].any() and not out[0].any()
    assert PostProcess().taught({}) == PostProcess()


def test_it_drops_objects_smaller_than_nearly_all_those_painted_whole():
    spec = ClassSpec.build({"background": 1, "mito": 2, "lysosome": 3})
    m = np.zeros((2, 1, 20, 20), bool)
    m[:, 0, 2:7, 2:7] = True  # 25 px of each class
    m[:, 0, 10:18, 10:18] = True  # 64 px
    meta = {"min_object_px": {"mito": 9, "lysosome": 4}, "object_floor_px": {"mito": 40}}
    taught = PostProcess(default_min_size=16).taught(meta)
    assert taught.min_size == {"mito": 40, "lysosome": 4}
    out = postprocess_masks(m, spec, taught)
    assert not out[0, 0, 4, 4] and out[0, 0, 12, 12]  # the 25-px mitochondrion is gone, the 64-px one stays
    assert out[1, 0, 4, 4]
    assert PostProcess(min_size={"mito": 10}).taught(meta).min_size["mito"] == 10  # a size set by hand wins


def test_it_keeps_nucleolus_inside_nucleus_after_postprocessing():
    spec = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3})
    nucleus = np.zeros((1, 20, 20), bool)
    nucleus[0, 2:10, 2:10] = True
    nucleolus = np.zeros((1, 20, 20), bool)
    nucleolus[0, 6:14, 6:14] = True
    out = postprocess_masks(np.stack([nucleus, nucleolus]), spec, PostProcess(default_min_size=0))
    assert not np.any(out[1] & ~out[0]) and out[1].any()


def test_it_covers_the_volume_with_blocks_exactly_once():
    count = np.zeros((5, 30, 41), int)
    for r in block_regions(count.shape, (2, 16, 16)):
        count[r] += 1
    assert np.all(count == 1)


def test_it_predicts_at_the_models_scale_and_returns_full_resolution():
    model, img = random_model(), volume((2, 64, 80))
    model.scale = 2
    full = predict_probabilities(model, img, window=32, overlap=8, device="cpu")
    blocks = predict_probabilities(model, img, block=(1, 32, 48), window=32, overlap=8, device="cpu")
    assert full.shape == (1, 2, 64, 80)
    assert np.abs(full - blocks).mean() < 0.03 * full.std()
    # what the network saw: the image averaged over 2x2 squares
    model.scale = 1
    coarse = predict_probabilities(model, img.reshape(2, 32, 2, 40, 2).mean((2, 4)), window=32, overlap=8, device="cpu")
    upsampled_centres = (full[..., ::2, ::2] + full[..., 1::2, 1::2]) / 2
    assert np.corrcoef(upsampled_centres.ravel(), coarse.ravel())[0, 1] > 0.9
