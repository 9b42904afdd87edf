"""The loop on an unseen region paints and ranks only inside the target, and its summary reads the corrected share."""
from __future__ import annotations

import numpy as np

from benchmarks.loop_summary import summarize
from benchmarks.loop_unseen import crop_around
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
