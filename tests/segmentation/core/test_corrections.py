from __future__ import annotations

import math

import numpy as np
import torch

from segmentation.core.corrections import corrected_error, region_tiles
from segmentation.core.training import TrainConfig, hard_example_weight, train
from tests.segmentation.core.synthetic import blobs

torch.set_num_threads(1)


def test_region_tiles_keep_only_tiles_wholly_inside_the_region_and_unlabeled():
    region = np.zeros((4, 8, 8), bool)
    region[2:, 4:, 4:] = True   # the bottom-right quadrant of slices 2 and 3
    region[0, 0:3, 0:3] = True  # part of a tile only: never a candidate
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[3, 5, 5] = 1         # slice 3's quadrant holds a painted voxel
    assert region_tiles(region, 4) == [(2, 4, 4, 8, 8), (3, 4, 4, 8, 8)]
    assert region_tiles(region, 4, labels=labels) == [(2, 4, 4, 8, 8)]
    finer = region_tiles(region, 2)  # now slice 0's corner tile lies wholly inside too
    assert finer[0] == (0, 0, 0, 2, 2) and len(finer) == 1 + 2 * 4


def test_corrected_error_counts_errors_inside_the_painted_tiles_only():
    truth = np.ones((1, 4, 8), np.uint8)
    truth[0, :, 0:2] = 2
    before = np.ones_like(truth)
    before[0, :, 2:4] = 2    # inside the tile: 8 false positives, 8 missed voxels (x 0-1)
    before[0, :, 6:8] = 2    # outside the tile: ignored
    after = truth.copy()
    after[0, 0, 3] = 2       # one false positive left
    after[0, 0, 0] = 1       # and one miss left
    c = corrected_error(before, after, truth, [(0, 0, 0, 4, 4)], value=2)
    assert (c.fp_before, c.fn_before, c.fp_after, c.fn_after) == (8, 8, 1, 1)
    assert c.gone == 1 - 2 / 16
    assert c.fixed == 14 / 16
    one_off, three_off = truth.copy(), truth.copy()
    one_off[0, 0, 2] = 2
    three_off[0, 0:3, 3] = 2  # the old error fixed, three new ones: more error than before
    worse = corrected_error(one_off, three_off, truth, [(0, 0, 0, 4, 4)], value=2)
    assert worse.gone == 1 - 3 / 1 and worse.fixed == 1.0
    clean = corrected_error(truth, truth, truth, [(0, 0, 0, 4, 4)], value=2)
    assert math.isnan(clean.gone) and math.isnan(clean.fixed)


def test_hard_example_weight_raises_only_labeled_voxels_the_reference_gets_wrong():
    target = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
    weight = torch.tensor([[[[1.0, 0.0, 1.0, 1.0]]]])
    logits = torch.tensor([[[[2.0, 2.0, -1.0, 3.0]]]])  # a confident false positive, an unlabeled one, a miss, a hit
    assert hard_example_weight(weight, target, logits, 5.0).tolist() == [[[[5.0, 0.0, 5.0, 1.0]]]]


def test_fine_tuning_with_hard_weight_runs_and_records_it():
    img, truth = blobs((3, 32, 32))
    lab = np.zeros_like(truth)
    lab[1] = truth[1]
    tiny = TrainConfig(patch=32, batch=2, base_width=8, depth=3, max_steps=2, calibrate=False)
    base = train(img, lab, classes={"background": 1, "mito": 2}, minutes=1.0, device="cpu", config=tiny).model
    hard = TrainConfig(patch=32, batch=2, base_width=8, depth=3, max_steps=2, calibrate=False, hard_weight=4.0)
    tuned = train(img, lab, classes={"background": 1, "mito": 2}, minutes=1.0, device="cpu", init=base, config=hard)
    assert tuned.steps == 2 and tuned.meta["hard_weight"] == 4.0
    assert not all(torch.equal(a, b) for a, b in zip(tuned.model.net.state_dict().values(), base.net.state_dict().values()))
