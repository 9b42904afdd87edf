from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.metrics import dice_iou, instance_dice

CLASSES = {"background": 1, "mito": 2}


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 3, (4, 16, 16))
    pred = truth.copy()
    flip = rng.random(truth.shape) < 0.2
    pred[flip] = 3 - pred[flip]
    return pred, truth


def test_it_gives_one_for_identical_volumes_and_zero_for_disjoint_ones():
    _, truth = _pair()
    assert dice_iou(truth, truth, classes=CLASSES)["mito"]["dice"] == 1.0
    opposite = 3 - truth
    r = dice_iou(opposite, truth, classes=CLASSES)["mito"]
    assert r["dice"] == 0.0 and r["iou"] == 0.0


def test_it_keeps_dice_and_iou_consistent():
    pred, truth = _pair()
    for r in dice_iou(pred, truth, classes=CLASSES).values():
        assert r["dice"] == pytest.approx(2 * r["iou"] / (1 + r["iou"]))
        assert 0 < r["dice"] < 1


def test_it_matches_a_hand_count():
    truth = np.array([[[2, 2, 2, 1]]])
    pred = np.array([[[2, 2, 1, 2]]])
    r = dice_iou(pred, truth, classes=CLASSES)["mito"]
    assert r["dice"] == pytest.approx(2 * 2 / (3 + 3))
    assert r["iou"] == pytest.approx(2 / 4)


def test_it_scores_only_the_requested_slices():
    pred, truth = _pair()
    pred[2:] = truth[2:]
    assert dice_iou(pred, truth, classes=CLASSES, slices=slice(2, 4))["mito"]["dice"] == 1.0
    assert dice_iou(pred, truth, classes=CLASSES, slices=slice(0, 2))["mito"]["dice"] < 1.0


def test_it_counts_descendants_as_part_of_their_parent_with_a_hierarchy():
    truth = np.array([[[2, 3, 1]]])  # nucleus, nucleolus, background
    pred = np.array([[[3, 2, 1]]])
    classes = {"background": 1, "nucleus": 2, "nucleolus": 3}
    flat = dice_iou(pred, truth, classes=classes)
    nested = dice_iou(pred, truth, classes=classes, hierarchy={"nucleolus": "nucleus"})
    assert flat["nucleus"]["dice"] == 0.0
    assert nested["nucleus"]["dice"] == 1.0


def test_it_leaves_ignored_truth_voxels_out():
    truth = np.array([[[2, 0, 1]]])
    pred = np.array([[[2, 2, 1]]])
    assert dice_iou(pred, truth, classes=CLASSES, ignore=0)["mito"]["dice"] == 1.0
    assert dice_iou(pred, truth, classes=CLASSES)["mito"]["dice"] < 1.0


def test_it_refuses_volumes_of_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        dice_iou(np.zeros((2, 3, 3), int), np.zeros((2, 3, 4), int), classes=CLASSES)


def test_it_matches_each_truth_cell_to_the_prediction_that_overlaps_it_most():
    truth = np.zeros((1, 4, 8), int)
    truth[0, :, :4] = 1
    truth[0, :, 4:] = 2
    pred = np.zeros_like(truth)
    pred[0, :, :3] = 7       # most of cell 1
    pred[0, :, 3:5] = 8      # a sliver of both
    res = instance_dice(pred, truth)
    assert res["matched"] == {1: 7, 2: 8}
    assert res["cells"][1] == pytest.approx(2 * 12 / (16 + 12))
    assert res["cells"][2] == pytest.approx(2 * 4 / (16 + 8))
    assert res["mean"] == pytest.approx(np.mean(list(res["cells"].values())))


def test_it_scores_an_unmatched_truth_cell_as_zero():
    truth = np.array([[1, 1, 2, 2]])
    pred = np.array([[5, 5, 0, 0]])
    res = instance_dice(pred, truth)
    assert res["cells"] == {1: 1.0, 2: 0.0}
    assert res["matched"][2] == 0
    assert res["mean"] == 0.5
