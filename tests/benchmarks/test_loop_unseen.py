"""The loop on an unseen region paints and ranks only inside the target, and its summary reads the corrected share."""
from __future__ import annotations

import numpy as np

from benchmarks.loop_summary import summarize
from benchmarks.loop_unseen import crop_around, score_on_union
from benchmarks.unseen import split
from segmentation.core.corrections import region_tiles


def test_the_crop_holds_the_target_with_context_on_the_tile_grid_and_its_tiles_stay_in_the_target():
    rng = np.random.default_rng(0)
    mito = rng.random((20, 96, 96)) < 0.1
    s = split("cdeep3m_sbem_mito", np.where(mito, 2, 1).astype(np.uint8), mito)
    box = crop_around(s.unseen, 32)
    assert (box[0].start, box[0].stop) == (14, 20)  # z 15-19 and the neighbour 14 the mixing reads
    assert s.unseen[box].sum() == s.unseen.sum()
    tiles = region_tiles(s.unseen[box], 32, labels=s.sparse[box])
    assert len(tiles) == 5 * 3 * 3 and all(z >= 1 for z, *_ in tiles)  # never the context slice
    quad = np.zeros((10, 128, 128), bool)
    quad[:, 64:, 64:] = True
    qbox = crop_around(quad, 32)
    assert (qbox[1].start, qbox[2].start, qbox[1].stop) == (32, 32, 128)  # one tile of context, grid-aligned
    assert all(quad[qbox][z, y0:y1, x0:x1].all() for z, y0, x0, y1, x1 in region_tiles(quad[qbox], 32))


def _run(seed, gone):
    row0 = {"round": 0, "dice": 0.6, "labeled_voxels": 10}
    def arm(d, g):
        return [row0, {"round": 1, "dice": d, "labeled_voxels": 20, "corrected": {"gone": g, "fixed": g + 0.1}}]
    return {"args": {"seed": seed, "datasets": ["x"], "rounds": 1, "k": 4, "tile": 256, "round_steps": 110, "base": "b"},
            "results": [{"dataset": "x", "arms": {"suggested": arm(0.7, gone), "random": arm(0.65, 0.2)}}]}


def test_the_summary_averages_the_share_of_corrected_error_per_arm():
    s = summarize([_run(0, 0.5), _run(1, 0.7)])[0]["rounds"]
    assert "gone_suggested" not in s[0]
    assert np.isclose(s[1]["gone_suggested"], 0.6) and np.isclose(s[1]["gone_random"], 0.2)
    assert np.isclose(s[1]["fixed_suggested"], 0.7) and s[1]["wins"] == 2


def test_every_arm_is_scored_on_the_voxels_no_arm_painted_and_against_a_second_annotator():
    truth = np.ones((2, 8, 8), np.uint8)
    truth[:, :4] = 2
    alt = truth.copy()
    alt[:, 3] = 1                                   # the second annotator draws the objects a row thinner
    target = np.ones(truth.shape, bool)
    right, wrong = truth.copy(), truth.copy()
    wrong[1, 4:] = 2                                # a false positive, but only in a tile the other arm painted
    picks = [[11, 4, 0, 8, 8]]                      # volume coordinates: the crop starts at z 10
    result = {"crop": [[10, 12], [0, 8], [0, 8]],
              "arms": {"suggested": [{}, {"picks": picks}], "random": [{}, {"picks": []}]}}
    score_on_union(result, {"suggested": [right, right], "random": [right, wrong]}, truth, target, alt)
    assert result["scored_voxels"] == 2 * 64 - 32
    assert result["arms"]["random"][1]["dice"] == 1.0   # its error lies where suggested painted: not scored
    assert result["arms"]["suggested"][1]["dice_alt"] == result["annotators_dice"] < 1.0
