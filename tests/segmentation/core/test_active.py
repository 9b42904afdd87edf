from __future__ import annotations

import numpy as np
import pytest
import torch

from segmentation.core.active import (
    binary_entropy,
    edge_band,
    flip_uncertainty,
    rank_tiles,
    suggest_regions,
    tile_scores,
)
from segmentation.core.classes import ClassSpec
from segmentation.core.modelfile import Normalization, TrainedModel
from segmentation.core.resunet import ResUNetConfig
from segmentation.core.training import TrainConfig, train
from tests.segmentation.core.synthetic import blobs

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine

CLASSES = {"background": 1, "mito": 2}


@pytest.fixture(scope="module")
def models():
    img, truth = blobs((6, 64, 64))
    labels = np.zeros_like(truth)
    labels[[1, 3]] = truth[[1, 3]]
    cfg = TrainConfig(patch=32, batch=4, base_width=8, depth=3, max_steps=300, lr=3e-3)
    trained = train(img, labels, classes=CLASSES, minutes=2, device="cpu", config=cfg).model
    untrained = train(img, labels, classes=CLASSES, minutes=2, device="cpu", config=TrainConfig(
        patch=32, batch=4, base_width=8, depth=3, max_steps=1, lr=0.0)).model
    return img, labels, trained, untrained


def test_it_measures_entropy_in_bits():
    assert binary_entropy(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, 1.0, 0.0], abs=1e-5)


@pytest.mark.slow
def test_it_is_unsure_before_training_and_sure_after(models):
    img, labels, trained, untrained = models
    before, _ = tile_scores(untrained, img, labels=labels, tile=32, device="cpu")
    after, _ = tile_scores(trained, img, labels=labels, tile=32, device="cpu")
    unlabeled = [0, 2, 4, 5]
    assert np.nanmean(before[unlabeled]) > 0.9
    assert np.nanmax(after[unlabeled]) < 0.6


@pytest.mark.slow
def test_it_points_at_what_training_never_showed(models):
    img, labels, trained, _ = models
    odd = img.copy()
    odd[4, 32:64, 0:32] = 125  # a grey never seen between the two trained intensities
    before = tile_scores(trained, img, labels=labels, tile=32, device="cpu")[0][..., 0]
    after = tile_scores(trained, odd, labels=labels, tile=32, device="cpu")[0][..., 0]
    unlabeled = after[[0, 2, 4, 5]].ravel()
    assert after[4, 1, 0] > before[4, 1, 0] and after[4, 1, 0] >= np.sort(unlabeled)[-3]  # among the three most uncertain
    picks = suggest_regions(trained, odd, labels=labels, k=3, tile=32, device="cpu")
    assert (4, 32, 0) in [(p.z, p.y0, p.x0) for p in picks]


@pytest.mark.slow
def test_it_never_suggests_labeled_regions(models):
    img, labels, trained, _ = models
    painted = labels.copy()
    painted[4, :, :32] = 1  # tiles (4, *, 0) now labeled
    picks = suggest_regions(trained, img, labels=painted, k=12, tile=32, device="cpu")
    assert len(picks) == 12
    assert all(p.z not in (1, 3) and not (p.z == 4 and p.x0 == 0) for p in picks)
    assert all(set(p.to_dict()) == {"z", "y0", "x0", "y1", "x1", "score"} for p in picks)


def test_it_spreads_suggestions_instead_of_stacking_them_on_one_spot():
    scores = np.zeros((10, 4, 4))
    scores[5, 1, 1] = 1.0
    scores[4:7, 1:3, 1:3] += 0.9   # a hot cluster around the best tile
    scores[0, 3, 3] = 0.5          # a lone, weaker spot far away
    picks = rank_tiles(scores, k=2, tile=64, shape=(10, 256, 256))
    assert (picks[0].z, picks[0].y0, picks[0].x0) == (5, 64, 64)
    assert (picks[1].z, picks[1].y0, picks[1].x0) == (0, 192, 192)


def test_it_counts_serial_sections_at_their_thickness_so_one_spot_is_not_suggested_on_slice_after_slice():
    scores = np.zeros((20, 4, 4))
    scores[:, 0, 0] = 1.0           # a hard spot that runs through every section
    scores[0, 3, 3] = 0.5           # a weaker one far away in YX
    sbem = rank_tiles(scores, k=2, tile=256, shape=(20, 1024, 1024), z_spacing=40 / 5.9)
    assert [(p.y0, p.x0) for p in sbem] == [(0, 0), (768, 768)]
    thick = rank_tiles(scores, k=2, tile=256, shape=(20, 1024, 1024), z_spacing=100.0)  # 5 slices = 500 px apart
    assert [(p.y0, p.x0) for p in thick] == [(0, 0), (0, 0)] and abs(thick[0].z - thick[1].z) >= 4


def test_it_leaves_the_spots_painted_in_earlier_rounds_for_new_ones():
    scores = np.zeros((5, 4, 4))
    scores[:, 0, 0] = 1.0           # a hard column, painted on slice 1 last round
    scores[3, 2, 3] = 0.4           # a weaker spot nobody has looked at
    painted = np.zeros((5, 4, 4))
    painted[1, 0, 0] = 1.0
    picks = rank_tiles(scores, k=1, tile=256, shape=(5, 1024, 1024), labeled_fraction=painted, z_spacing=40 / 5.9)
    assert [(p.z, p.y0, p.x0) for p in picks] == [(3, 512, 768)]
    everywhere = np.ones((5, 4, 4)) * 0.01   # strokes in every tile: nothing is new, so the scores decide
    again = rank_tiles(scores, k=1, tile=256, shape=(5, 1024, 1024), labeled_fraction=everywhere, z_spacing=40 / 5.9)
    assert (again[0].y0, again[0].x0) == (0, 0)


def test_it_counts_a_painted_spot_as_seen_only_within_the_painted_distance():
    scores = np.zeros((40, 2, 2))
    scores[:, 0, 0] = 1.0 - 0.001 * np.arange(40)   # a hard column, hardest near slice 0
    scores[0, 1, 1] = 0.4
    painted = np.zeros((40, 2, 2))
    painted[0, 0, 0] = 1.0          # 38 slices of 40 nm at 5.9 nm pixels are 258 px: more than a tile away
    picks = rank_tiles(scores, k=1, tile=256, shape=(40, 512, 512), labeled_fraction=painted, z_spacing=40 / 5.9)
    assert (picks[0].z, picks[0].y0, picks[0].x0) == (38, 0, 0)


def test_it_refuses_a_slice_spacing_that_is_not_positive():
    with pytest.raises(ValueError, match="z_spacing"):
        rank_tiles(np.ones((2, 2, 2)), k=1, tile=8, shape=(2, 16, 16), z_spacing=0)


def test_it_spreads_suggestions_over_slices_before_taking_a_second_tile_of_one_slice():
    scores = np.zeros((3, 4, 4))
    scores[0, 0, 0] = 1.0
    scores[0, 3, 3] = 0.9          # far from the best tile, but on its slice
    scores[2, 1, 1] = 0.5          # weaker, on another slice
    picks = rank_tiles(scores, k=2, tile=64, shape=(3, 256, 256), z_spacing=1e6)
    assert [(p.z, p.y0, p.x0) for p in picks] == [(0, 0, 0), (2, 64, 64)]
    doubled = rank_tiles(scores, k=2, tile=64, shape=(3, 256, 256), z_spacing=1e6, max_per_slice=2)
    assert [(p.z, p.y0, p.x0) for p in doubled] == [(0, 0, 0), (0, 192, 192)]


def test_it_takes_far_tiles_of_one_slice_before_close_ones_when_slices_run_out():
    scores = np.full((1, 4, 4), np.nan)  # NaN: labeled tiles, never suggested
    scores[0, 0, 0], scores[0, 0, 1], scores[0, 3, 3] = 1.0, 0.9, 0.2
    picks = rank_tiles(scores, k=3, tile=64, shape=(1, 256, 256))
    assert [(p.y0, p.x0) for p in picks] == [(0, 0), (192, 192), (0, 64)]


def test_it_refuses_a_per_slice_limit_below_one():
    with pytest.raises(ValueError, match="max_per_slice"):
        rank_tiles(np.ones((1, 2, 2)), k=1, tile=8, shape=(1, 16, 16), max_per_slice=0)


def test_it_fills_up_with_close_tiles_when_nothing_else_is_left():
    scores = np.array([[[1.0, 0.9]]])
    picks = rank_tiles(scores, k=2, tile=8, shape=(1, 8, 16))
    assert [p.score for p in picks] == [1.0, 0.9]


@pytest.mark.slow
def test_it_ranks_each_class_on_its_own_when_asked(models):
    img, labels, trained, _ = models
    picks = suggest_regions(trained, img[:2], labels=labels[:2], k=2, tile=32, per_class=True, tta=False, device="cpu")
    assert [p.cls for p in picks] == ["mito", "mito"] and picks[0].to_dict()["class"] == "mito"


def test_it_marks_a_band_on_both_sides_of_each_predicted_boundary():
    mask = np.zeros((1, 20, 20), bool)
    mask[0, 5:15, 5:15] = True
    band = edge_band(mask, 1)
    assert band[0, 5, 10] and band[0, 4, 10]  # the pixel either side of the boundary
    assert not band[0, 6, 10] and not band[0, 3, 10] and not band[0, 10, 10]
    assert edge_band(mask, 2)[0, 6, 10] and edge_band(mask, 2)[0, 3, 10]
    assert not edge_band(mask, 0).any()


@pytest.mark.slow
def test_it_can_score_only_what_lies_away_from_predicted_boundaries(models):
    img, _, model, _ = models
    plain, _ = tile_scores(model, img, tile=32, tta=False, device="cpu")
    inner, _ = tile_scores(model, img, tile=32, tta=False, device="cpu", edge=2)
    assert np.all(inner <= plain + 1e-6) and inner.sum() < 0.9 * plain.sum()


class _LeftRight(torch.nn.Module):
    """Sure of the class on the left half of what it sees and sure of none on the right: X flips disagree fully."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        sign = torch.where(torch.arange(w) < w // 2, 1.0, -1.0)
        return (20 * sign).expand(b, 1, h, w).clone()


def test_scores_stay_within_0_and_1_when_the_flips_disagree():
    spec = ClassSpec.build(CLASSES, None)
    model = TrainedModel(_LeftRight(), ResUNetConfig(in_slices=1, out_channels=len(spec.heads), base_width=4, depth=2),
                         spec, Normalization(lo=0.0, hi=255.0))
    scores, _ = tile_scores(model, np.full((2, 64, 64), 128, np.uint8), tile=32, device="cpu")
    assert scores.max() <= 1.0 and scores.min() > 0.99  # mean 0.5 (entropy 1) plus disagreement 0.5 gave 1.5


def test_flip_uncertainty_is_the_plain_sum_below_the_cap():
    probs = np.array([0.0, 0.0, 0.0, 0.4])  # mean 0.1, mean absolute disagreement 0.15
    assert flip_uncertainty(probs) == pytest.approx(binary_entropy(np.array(0.1)) + 0.15, abs=1e-6)
    assert flip_uncertainty(probs[:1]) == pytest.approx(0.0, abs=1e-5)  # one prediction: entropy alone
