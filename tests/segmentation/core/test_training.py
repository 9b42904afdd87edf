from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from segmentation.core.classes import ClassSpec
from segmentation.core.inference import predict_probabilities, predict_volume
from segmentation.core.metrics import dice_iou
from segmentation.core.modelfile import Normalization, load_model, save_model
from segmentation.core.sampling import LabeledSlices, PatchSampler, elastic
from segmentation.core.training import (
    MIN_CALIBRATION_VOXELS,
    THRESHOLDS,
    TrainConfig,
    _around,
    _Average,
    _gather,
    _split_columns,
    calibrate,
    context_slices,
    labeled_slices,
    lr_factor,
    masked_loss,
    smallest_objects,
    train,
)
from tests.segmentation.core.synthetic import blobs

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine
CLASSES = {"background": 1, "mito": 2}
TINY = TrainConfig(patch=48, batch=4, base_width=8, depth=3)


def sparse(truth, zs):
    lab = np.zeros_like(truth)
    lab[list(zs)] = truth[list(zs)]
    return lab


def test_it_gives_zero_loss_and_gradient_when_nothing_is_labeled():
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    loss = masked_loss(logits, torch.rand(2, 2, 8, 8).round(), torch.zeros(2, 2, 8, 8))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_it_puts_no_gradient_on_unlabeled_voxels_whatever_their_target():
    torch.manual_seed(0)
    logits = torch.randn(1, 1, 8, 8, requires_grad=True)
    weight = torch.zeros(1, 1, 8, 8)
    weight[..., :4] = 1
    target = torch.zeros(1, 1, 8, 8)
    target[..., :2] = 1
    loss = masked_loss(logits, target, weight)
    loss.backward()
    assert torch.all(logits.grad[..., 4:] == 0) and torch.any(logits.grad[..., :4] != 0)
    other = target.clone()
    other[..., 4:] = 1 - other[..., 4:]
    assert masked_loss(logits, other, weight).item() == pytest.approx(loss.item())


def test_it_samples_patches_mostly_on_labeled_voxels_and_rare_classes():
    labels = np.zeros((1, 64, 64), np.uint8)
    labels[0, 40:48, 40:48] = 1          # background, painted small
    labels[0, 10:12, 10:12] = 2          # a rare class, 4 voxels
    data = LabeledSlices(np.zeros((1, 1, 64, 64), np.float32), labels, np.array([False]), [0])
    sampler = PatchSampler(data, ClassSpec.build(CLASSES), patch=16, rng=np.random.default_rng(0))
    labeled = positive = 0
    for _ in range(200):
        _, t, w = sampler.sample()
        labeled += w.sum() > 0
        positive += (t * w).sum() > 0
    assert labeled > 150 and positive > 60


def test_it_shows_a_few_painted_tiles_about_as_often_as_a_fully_painted_slice():
    labels = np.ones((2, 64, 64), np.uint8)
    labels[0, 20:30, 20:30] = 2
    labels[1] = 0
    labels[1, :8, :8] = 1                # a small painted tile on another slice: 1/64 of the voxels
    labels[1, 2:4, 2:4] = 2
    images = np.stack([np.zeros((1, 64, 64), np.float32), np.ones((1, 64, 64), np.float32)])
    data = LabeledSlices(images, labels, np.array([False, False]), [0, 1])
    spec = ClassSpec.build(CLASSES)

    def share_of_tile_slice(balance):
        sampler = PatchSampler(data, spec, patch=16, rng=np.random.default_rng(0), balance=balance)
        return np.mean([sampler.sample()[0].mean() > 0.5 for _ in range(400)])

    voxelwise, balanced = share_of_tile_slice(1.0), share_of_tile_slice(0.5)
    assert voxelwise < 0.1          # every voxel alike: the tile is rarely seen
    assert balanced > 3 * voxelwise and balanced > 0.08  # square root: about 1/9 of the patches


def test_elastic_deformation_bends_image_and_labels_together_and_weighs_nothing_pulled_from_outside():
    yy, xx = np.mgrid[0:96, 0:96]
    disk = ((yy - 48) ** 2 + (xx - 40) ** 2 < 20**2).astype(np.float32)
    target = np.stack([disk, 1 - disk])
    image, t, w = elastic(disk[None], target, np.ones_like(target), rng=np.random.default_rng(1), amplitude=0.05)
    assert image.shape == (1, 96, 96) and t.shape == w.shape == (2, 96, 96)
    assert np.abs(image[0] - disk).sum() > 50                      # it moved something
    inside = w[0] > 0
    agree = ((image[0] > 0.5) == (t[0] > 0.5))[inside].mean()
    assert agree > 0.98                                            # labels follow the image
    assert inside.mean() > 0.5                                     # only voxels from outside lose their weight
    assert not (w[:, 30:66, 30:66] == 0).any()                     # the centre always comes from inside


def test_it_refuses_a_slice_balance_outside_zero_to_one():
    data = LabeledSlices(np.zeros((1, 1, 8, 8), np.float32), np.ones((1, 8, 8), np.uint8), np.array([False]), [0])
    with pytest.raises(ValueError, match="balance"):
        PatchSampler(data, ClassSpec.build(CLASSES), patch=8, rng=np.random.default_rng(0), balance=1.5)


def test_it_finds_labeled_and_complete_slices():
    lab = np.zeros((5, 4, 4), np.uint8)
    lab[1, 0, 0] = 2
    assert labeled_slices(lab) == [1]
    assert labeled_slices(lab, complete_slices=[3]) == [1, 3]


@pytest.fixture(scope="module")
def trained():
    img, truth = blobs()
    result = train(img, sparse(truth, [1, 4, 6]), classes=CLASSES, minutes=1.0, device="cpu", seed=0,
                   config=TrainConfig(patch=48, batch=4, base_width=8, depth=3, max_steps=150))
    return img, truth, result


@pytest.mark.slow
def test_it_clearly_beats_chance_on_slices_it_never_saw(trained):
    img, truth, result = trained
    pred = predict_volume(result.model, img, device="cpu", window=64, overlap=16)
    unseen = [z for z in range(img.shape[0]) if z not in (1, 4, 6)]
    scores = [dice_iou(pred[z], truth[z], classes=CLASSES)["mito"]["dice"] for z in unseen]
    chance = 2 * (truth == 2).mean() / (1 + (truth == 2).mean())  # Dice of predicting everything
    assert np.mean(scores) > 0.8 > chance


def test_it_holds_out_labeled_slices_for_validation(trained):
    _, _, result = trained
    assert result.val_slices and not set(result.val_slices) & set(result.train_slices)
    assert set(result.val_slices) | set(result.train_slices) == {1, 4, 6}
    assert "mito" in result.val_dice and all(c[2] is not None for c in result.curve)


def test_it_validates_nothing_with_a_single_labeled_slice():
    img, truth = blobs((3, 32, 32))
    result = train(img, sparse(truth, [1]), classes=CLASSES, minutes=1.0, device="cpu", config=TrainConfig(
        patch=32, batch=2, base_width=4, depth=3, max_steps=2))
    assert result.val_slices == [] and result.train_slices == [1] and result.val_dice == {}


def test_it_starts_fine_tuning_from_the_given_weights(trained, tmp_path):
    img, truth, result = trained
    path = save_model(tmp_path / "m.pt", result.model)
    lab = sparse(truth, [2])
    frozen = TrainConfig(patch=48, batch=4, base_width=8, depth=3, max_steps=1, lr=0.0)
    tuned = train(img, lab, classes=CLASSES, minutes=1.0, device="cpu", init=path, config=frozen)
    fresh = train(img, lab, classes=CLASSES, minutes=1.0, device="cpu", config=frozen)
    old = result.model.net.state_dict()
    convs = [k for k in old if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert all(torch.equal(tuned.model.net.state_dict()[k], old[k]) for k in convs)
    assert not any(torch.equal(fresh.model.net.state_dict()[k], old[k]) for k in convs)


def test_it_repeats_itself_with_the_same_seed():
    img, truth = blobs((3, 32, 32))
    cfg = TrainConfig(patch=32, batch=2, base_width=4, depth=3, max_steps=3)
    a, b = (train(img, sparse(truth, [1]), classes=CLASSES, minutes=1.0, device="cpu", seed=5, config=cfg) for _ in range(2))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_it_reports_progress_and_stops_when_asked():
    img, truth = blobs((3, 32, 32))
    seen = []
    calls = iter(range(100))
    result = train(img, sparse(truth, [0, 2]), classes=CLASSES, minutes=1.0, device="cpu",
                   config=TrainConfig(patch=32, batch=2, base_width=4, depth=3),
                   on_progress=seen.append, should_stop=lambda: next(calls) >= 4)
    assert result.stopped == "cancelled" and result.steps == 4
    assert seen and seen[-1].step == 4 and seen[-1].val_dice is not None


def test_it_stops_at_the_time_budget():
    img, truth = blobs((3, 32, 32))
    result = train(img, sparse(truth, [1]), classes=CLASSES, minutes=0.03, device="cpu",
                   config=TrainConfig(patch=32, batch=2, base_width=4, depth=3))
    assert result.stopped == "budget" and result.seconds < 10


def test_it_records_normalisation_and_classes_in_the_model_file(trained, tmp_path):
    img, _, result = trained
    loaded = load_model(save_model(tmp_path / "m.pt", result.model))
    assert loaded.normalization == result.model.normalization
    assert loaded.classes == result.model.classes
    a = predict_volume(result.model, img[:2], device="cpu", window=64)
    b = predict_volume(loaded, img[:2], device="cpu", window=64)
    assert np.array_equal(a, b)


def test_it_refuses_labels_with_values_that_name_no_class():
    img, truth = blobs((3, 32, 32))
    lab = sparse(truth, [1])
    lab[1, 0, 0] = 9
    with pytest.raises(ValueError, match="9"):
        train(img, lab, classes=CLASSES, minutes=0.1, device="cpu")


def test_it_trains_at_a_coarser_scale_and_predicts_at_full_resolution(tmp_path):
    img, truth = blobs((3, 64, 64))
    result = train(img, sparse(truth, [1]), classes=CLASSES, minutes=1.0, device="cpu", config=TrainConfig(
        patch=32, batch=2, base_width=4, depth=3, max_steps=2, scale=2))
    assert result.model.scale == 2 and result.meta["scale"] == 2
    loaded = load_model(save_model(tmp_path / "m.pt", result.model))
    assert loaded.scale == 2
    assert predict_volume(loaded, img, device="cpu", window=32).shape == img.shape


def test_it_never_returns_worse_weights_than_it_started_from_when_fine_tuning(trained, tmp_path):
    img, truth, result = trained
    # a wild learning rate wrecks the weights; validation must fall back to the starting ones
    wild = TrainConfig(patch=48, batch=4, base_width=8, depth=3, max_steps=5, lr=50.0, finetune_lr_factor=1.0)
    tuned = train(img, sparse(truth, [1, 4, 6]), classes=CLASSES, minutes=1.0, device="cpu", init=result.model, config=wild)
    assert tuned.curve[0][0] == 0 and tuned.curve[0][1] is None
    assert tuned.val_dice["mito"] >= tuned.curve[0][2] - 1e-3


def test_it_validates_on_the_slices_it_is_given_and_trains_on_every_other():
    img, truth = blobs((6, 32, 32))
    cfg = TrainConfig(patch=32, batch=2, base_width=4, depth=3, max_steps=2)
    result = train(img, sparse(truth, [1, 3, 4]), classes=CLASSES, minutes=1.0, device="cpu", val_slices=[3, 5], config=cfg)
    assert result.val_slices == [3] and result.train_slices == [1, 4]
    with pytest.raises(ValueError, match="val_slices"):
        train(img, sparse(truth, [1, 3]), classes=CLASSES, minutes=1.0, device="cpu", val_slices=[1, 3], config=cfg)


def test_it_keeps_the_starting_batch_norm_statistics_when_fine_tuning(trained):
    img, truth, result = trained
    old = {k: v.clone() for k, v in result.model.net.state_dict().items() if k.endswith("running_mean")}
    lab = sparse(truth, [1, 4, 6])

    def tuned(freeze):
        cfg = TrainConfig(patch=48, batch=4, base_width=8, depth=3, max_steps=3, finetune_freeze_norm=freeze)
        state = train(img, lab, classes=CLASSES, minutes=1.0, device="cpu", init=result.model, val_slices=[],
                      config=cfg).model.net.state_dict()
        return [torch.equal(state[k], v) for k, v in old.items()]

    assert all(tuned(True))
    assert not any(tuned(False))


def test_it_warms_the_learning_rate_up_then_lets_it_fall_to_the_floor():
    start, peak, middle, end = (lr_factor(p, 0.05) for p in (0.0, 0.02, 0.5, 1.0))
    assert start == pytest.approx(0.05) and peak == pytest.approx(1.0) and end == pytest.approx(0.05)
    assert peak > middle > end
    falling = [lr_factor(p, 0.05) for p in np.linspace(0.02, 1.0, 50)]
    assert all(a >= b for a, b in zip(falling, falling[1:]))
    assert lr_factor(0.7, 1.0) == 1.0  # a floor of 1 keeps the rate constant
    with pytest.raises(ValueError, match="lr_floor"):
        train(*blobs((3, 32, 32)), classes=CLASSES, minutes=0.1, device="cpu", config=TrainConfig(lr_floor=0.0))


def test_the_weight_average_trails_the_weights_by_its_warmed_up_decay():
    net = torch.nn.Linear(1, 1, bias=False)
    net.weight.data.fill_(0.0)
    average = _Average(net, 0.99)
    for _ in range(300):
        average.update(net)
    net.weight.data.fill_(1.0)
    for _ in range(100):
        average.update(net)
    left = np.prod([min(0.99, (1 + n) / (10 + n)) for n in range(301, 401)])  # share of the old weight still in it
    assert average.net.weight.item() == pytest.approx(1.0 - left, abs=1e-5) and 0.01 < left < 0.5
    assert net.weight.item() == 1.0  # the network itself is not touched


def test_it_returns_the_weight_average_by_default_and_the_raw_weights_without_it():
    img, truth = blobs((3, 32, 32))
    cfg = TrainConfig(patch=32, batch=2, base_width=4, depth=3, max_steps=5, select_best=False)
    assert cfg.ema > 0
    runs = [train(img, sparse(truth, [0, 2]), classes=CLASSES, minutes=1.0, device="cpu", seed=3, config=c)
            for c in (cfg, dataclasses.replace(cfg, ema=0.0))]
    averaged, raw = (r.model.net.state_dict() for r in runs)
    weights = [k for k in raw if k.endswith("conv1.weight")]
    assert not any(torch.equal(averaged[k], raw[k]) for k in weights)


def test_it_records_how_small_the_painted_objects_were_at_full_resolution():
    labels = np.ones((2, 40, 40), np.uint8)
    labels[0, 2:5, 2:5] = 2  # 9 px
    for k in range(1, 8):  # seven objects of 36 px
        labels[1, 4 * k : 4 * k + 3, 10:22] = 2
    data = LabeledSlices(np.zeros((2, 1, 40, 40), np.float32), labels, np.zeros(2, bool), [0, 1])
    spec = ClassSpec.build(CLASSES)
    assert smallest_objects(data, spec, 1) == {"mito": 9}
    assert smallest_objects(data, spec, 2) == {"mito": 36}  # a coarser grid: pixels of the image
    assert smallest_objects(data, spec, 1, percentile=50) == {"mito": 36}


def test_the_floor_counts_only_objects_painted_whole():
    labels = np.zeros((1, 40, 40), np.uint8)
    labels[0, 0:20, 0:20] = 1  # a painted tile of background ...
    labels[0, 5:10, 5:10] = 2  # ... around a whole 25-px object
    labels[0, 15:20, 15:18] = 2  # 15 px cut by the tile's edge
    labels[0, 30:32, 30:32] = 2  # a 4-px stroke with nothing painted around it
    labels[0, 0:3, 30:40] = 1
    labels[0, 0:2, 34:36] = 2  # 4 px on the slice's edge
    labels[0, 12, 12] = 2  # a lone pixel: a slip of the brush
    data = LabeledSlices(np.zeros((1, 1, 40, 40), np.float32), labels, np.zeros(1, bool), [0])
    spec = ClassSpec.build(CLASSES)
    assert smallest_objects(data, spec, 1, percentile=0) == {"mito": 1}
    assert smallest_objects(data, spec, 1, percentile=0, whole=True) == {"mito": 25}
    objects = np.where(labels == 2, 2, 0).astype(np.uint8)
    objects[0, 30:32, 30:32] = 0
    marked = LabeledSlices(data.images, objects, np.ones(1, bool), [0])  # a slice marked complete: all of it painted
    assert smallest_objects(marked, spec, 1, percentile=0, whole=True) == {"mito": 15}


def test_it_holds_out_columns_of_every_painted_slice_when_asked():
    img, truth = blobs((6, 32, 32))
    cfg = TrainConfig(patch=32, batch=2, base_width=4, depth=3, max_steps=3, val_split="columns", val_fraction=0.25)
    result = train(img, sparse(truth, [1, 4]), classes=CLASSES, minutes=1.0, device="cpu", config=cfg)
    assert result.train_slices == [1, 4] and result.val_slices == [1, 4] and "mito" in result.val_dice
    with pytest.raises(ValueError, match="val_split"):
        train(img, sparse(truth, [1, 4]), classes=CLASSES, minutes=1.0, device="cpu", config=TrainConfig(val_split="rows"))


def test_it_never_lets_training_see_the_labels_of_held_out_columns():
    spec = ClassSpec.build(CLASSES)
    labels = np.zeros((2, 8, 10), np.uint8)
    labels[0] = 2
    data = LabeledSlices(np.zeros((2, 1, 8, 10), np.float32), labels, np.array([False, True]), [0, 3])
    fit, held = (np.stack(part.labels) for part in _split_columns(data, spec, 0.2))
    assert not fit[..., 8:].any() and (fit[..., :8] != 0).all()
    assert not held[..., :8].any() and (held[..., 8:] != 0).all()
    assert (held[1][..., 8:] == 1).all()  # the complete slice's unpainted voxels: background
    assert not any(part.complete.any() for part in _split_columns(data, spec, 0.2))


def test_it_gives_isotropic_volumes_neighbouring_slices_and_thick_sections_none():
    assert context_slices((4.0, 4.0, 4.0)) == 5  # FIB-SEM
    assert context_slices((8.0, 5.0, 5.0)) == 5
    assert context_slices((40.0, 5.9, 5.9)) == 1  # serial sections
    with pytest.raises(ValueError, match="voxel_size_nm"):
        context_slices((0.0, 5.0, 5.0))


def test_it_calibrates_each_heads_threshold_on_enough_held_out_voxels_and_prediction_uses_it(trained):
    img, _, result = trained
    model = result.model
    zs = [0, 2, 3, 5, 7]  # never labeled; call "mito" whatever the model gives p > 0.725 there
    p = predict_probabilities(model, img[zs], device="cpu")[0]
    labels = np.zeros(img.shape, np.uint8)
    labels[zs] = np.where(p > 0.725, 2, 1)
    assert (p > 0.725).sum() >= MIN_CALIBRATION_VOXELS
    held_out = _gather(img, labels, zs, model.halo, model.normalization, set(), model.scale, margin=0)
    chosen = calibrate(model, held_out, torch.device("cpu"))[0]["mito"]
    too_few = labels.copy()
    too_few[too_few == 2] = 0  # unlabeled: only background is held out
    assert calibrate(model, _gather(img, too_few, zs, model.halo, model.normalization, set(), model.scale, margin=0),
                     torch.device("cpu")) == ({}, {})  # nothing to calibrate on: 0.5

    def dice(t: float) -> float:
        return 2 * ((p > t) & (p > 0.725)).sum() / ((p > t).sum() + (p > 0.725).sum())

    best = max(dice(t) for t in THRESHOLDS)
    assert dice(chosen) >= best - 1e-3  # the best held-out Dice on the grid ...
    assert all(abs(t - 0.5) >= abs(chosen - 0.5) for t in THRESHOLDS if dice(t) >= best - 1e-3)  # ... nearest 0.5

    recalibrated = dataclasses.replace(model, meta={**model.meta, "thresholds": {"mito": 0.725}})
    assert np.array_equal(predict_volume(recalibrated, img[zs], device="cpu", postprocess=None) == 2, p > 0.725)


def test_it_mixes_neighbouring_slices_when_held_out_labels_are_smooth_along_z_and_not_when_they_are_not(trained):
    img, _, result = trained
    model = dataclasses.replace(result.model, meta={})
    p = predict_probabilities(model, img, device="cpu")[0]
    zs = [2, 5]
    smooth = 0.4 * p + 0.3 * (np.roll(p, 1, 0) + np.roll(p, -1, 0))  # zs are inner slices: roll = neighbours

    def chosen(truth):
        labels = np.zeros(img.shape, np.uint8)
        labels[zs] = np.where(truth[zs] > 0.5, 2, 1)
        held_out = _gather(img, labels, zs, model.halo, model.normalization, set(), model.scale, margin=0)
        return calibrate(model, held_out, torch.device("cpu"), _around(img, held_out, model.halo, model.normalization, model.scale))

    thresholds, z_blend = chosen(smooth)
    # the labels were made with the largest weight; a lighter one can tie with it, and ties go to less mixing
    assert z_blend.get("mito", 0) > 0 and thresholds == {"mito": 0.5}
    assert chosen(p) == ({"mito": 0.5}, {})  # each slice alone is already right: no mixing


def test_it_can_keep_the_last_weights_and_still_validate_and_calibrate_on_held_out_slices(trained):
    img, truth, result = trained
    config = TrainConfig(patch=48, batch=4, patience=0)  # patience 0: a gated run stops at its first validation

    def tune(**changes):
        return train(img, sparse(truth, [1, 4, 6]), classes=CLASSES, minutes=0.2, device="cpu", init=result.model,
                     val_slices=[4], config=dataclasses.replace(config, **changes))
    last = tune(select_best=False)
    assert last.stopped == "budget" and len(last.curve) >= 2
    assert last.val_dice["mito"] == pytest.approx(last.curve[-1][2])  # the Dice of the weights returned
    assert set(last.model.meta["thresholds"]) == {"mito"}
    assert tune().stopped == "early_stop"


def test_a_model_fine_tuned_without_held_out_slices_keeps_the_calibration_it_started_from(trained):
    img, truth, result = trained
    start = dataclasses.replace(result.model, meta={**result.model.meta, "thresholds": {"mito": 0.65}, "z_blend": {"mito": 0.2}})
    tuned = train(img, sparse(truth, [1]), classes=CLASSES, minutes=1.0, device="cpu", init=start,
                  config=TrainConfig(patch=48, batch=4, max_steps=2))
    assert tuned.val_slices == [] and tuned.model.meta["thresholds"] == {"mito": 0.65}
    assert tuned.model.meta["z_blend"] == {"mito": 0.2}


# ----------------------------------------------------------------------------- labels anywhere in a big volume


class _Reads:
    """A ZYX array-like that records which slices were read, optionally naming candidates."""

    def __init__(self, array: np.ndarray, candidates: set[int] | None = None) -> None:
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.read: list[Any] = []
        if candidates is not None:
            self.candidate_slices = lambda: candidates

    def __getitem__(self, key):
        self.read.append(key[0] if isinstance(key, tuple) else key)
        return self.array[key]


def test_only_the_slices_the_labels_name_as_candidates_are_read():
    lab = np.zeros((40, 16, 16), np.uint8)
    lab[9, 3, 3] = lab[30, 5, 5] = 1
    every = _Reads(lab)
    assert labeled_slices(every) == [9, 30] and len(every.read) == 40
    named = _Reads(lab, candidates={8, 9, 10, 11, 28, 29, 30, 31})
    assert labeled_slices(named, complete_slices=[2]) == [2, 9, 30]
    assert sorted(named.read) == [8, 9, 10, 11, 28, 29, 30, 31]


def test_gathered_slices_are_cut_to_each_group_of_labels_plus_a_margin_not_the_whole_slice():
    img = np.random.default_rng(0).integers(0, 255, (3, 2000, 1500)).astype(np.uint8)
    lab = np.zeros(img.shape, np.uint8)
    lab[1, 700:720, 300:330] = 2
    lab[2, 1900:1910, 1400:1420] = 1  # two groups far apart on one slice: two regions, not the whole slice
    lab[2, 40:50, 60:70] = 2
    lab[2, 1950, 1000] = 1  # near the first group: it joins it
    norm = Normalization.measure(img)
    data = _gather(img, lab, [1, 2], 1, norm, set(), 1, margin=100)

    assert data.z == [1, 2, 2]
    assert data.boxes == [(600, 820, 200, 430), (0, 150, 0, 170), (1800, 2000, 900, 1500)]
    assert [im.shape for im in data.images] == [(3, 220, 230), (3, 150, 170), (3, 200, 600)]
    np.testing.assert_array_equal(data.labels[0], lab[1, 600:820, 200:430])
    np.testing.assert_array_equal(data.images[0][1], norm.apply(img[1, 600:820, 200:430]))
    assert sum(int((part != 0).sum()) for part in data.labels[1:]) == int((lab[2] != 0).sum())  # none twice

    whole = _gather(img, lab, [1, 2], 1, norm, {2}, 2, margin=100)
    assert whole.boxes[-1] == (0, 2000, 0, 1500) and whole.labels[-1].shape == (1000, 750)  # complete: whole
    above, below = _around(img, data, 1, norm, 1)
    assert [a.shape for a in above] == [b.shape for b in below] == [im.shape for im in data.images]
    np.testing.assert_array_equal(below[0][1], norm.apply(img[2, 600:820, 200:430]))


def test_training_on_labels_scattered_over_a_large_slice_holds_regions_not_slices():
    img = np.random.default_rng(1).integers(0, 255, (2, 4096, 4096)).astype(np.uint8)
    lab = np.zeros(img.shape, np.uint8)
    for y, x in ((100, 100), (100, 3900), (3900, 100), (3900, 3900), (2000, 2000)):
        lab[1, y : y + 20, x : x + 20] = 2
        lab[1, y + 20 : y + 30, x : x + 20] = 1
    data = _gather(img, lab, [1], 2, Normalization.measure(img), set(), 1, margin=160)
    held = sum(im.nbytes for im in data.images)
    assert len(data.z) == 5 and held < 5 * 5 * 4 * 400 * 400  # five 350² regions, not one 4096² slice (335 MB)
    assert all(lab.base is None for lab in data.labels)  # copies: a view would keep its whole plane alive
