"""The cross-volume benchmark paints only inside the target and never scores a painted voxel."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.cross_volume import draw_tiles, parse_bases, scored_mask
from benchmarks.loop_unseen import crop_around
from benchmarks.unseen import split
from segmentation.core.corrections import region_tiles


@pytest.mark.parametrize(("name", "shape"), [("cdeep3m_sbem_mito", (20, 128, 128)), ("drosophila_vnc_sstem", (10, 256, 256))])
def test_the_rounds_tiles_are_distinct_inside_the_target_and_never_scored(name, shape):
    rng = np.random.default_rng(0)
    mito = rng.random(shape) < 0.1
    s = split(name, np.where(mito, 2, 1).astype(np.uint8), mito)
    box = crop_around(s.unseen, 32)
    target = s.unseen[box]
    tiles = draw_tiles(region_tiles(target, 32, labels=s.sparse[box]), k=4, rounds=3, rng=np.random.default_rng([0, 1]))
    flat = [t for picks in tiles for t in picks]
    assert [len(picks) for picks in tiles] == [4, 4, 4] and len(set(flat)) == 12
    scored = scored_mask(target, tiles)
    painted = np.zeros(target.shape, bool)
    for z, y0, x0, y1, x1 in flat:
        assert target[z, y0:y1, x0:x1].all()  # inside the target, so never a labeled or validation voxel
        painted[z, y0:y1, x0:x1] = True
    assert np.array_equal(scored, target & ~painted) and scored.any()
    # the same seed draws the same tiles: every arm and rerun sees them
    again = draw_tiles(region_tiles(target, 32, labels=s.sparse[box]), k=4, rounds=3, rng=np.random.default_rng([0, 1]))
    assert again == tiles


def test_more_tiles_than_the_target_holds_is_refused():
    with pytest.raises(ValueError, match="need 12 tiles"):
        draw_tiles([(0, 0, 0, 32, 32)] * 5, k=4, rounds=3, rng=np.random.default_rng(0))


def test_base_models_are_named_per_data_set():
    assert parse_bases(["hela_sbfsem=x.pt"]) == {"hela_sbfsem": __import__("pathlib").Path("x.pt")}
    with pytest.raises(ValueError):
        parse_bases(["nope=x.pt"])
