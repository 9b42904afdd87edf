"""The block plan, and blockwise segment blocks that equal one whole-volume block bit for bit."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from segmentation.core.active import block_tile_sums, rank_tiles, tile_grid, tile_scores
from segmentation.core.blocks import block_plan
from segmentation.core.blockwise import Lattice, block_probabilities, segment_block
from tests.segmentation.core.test_inference import random_model, volume

torch.set_num_threads(1)  # bit-equality holds per thread count (segmentation/core/blockwise.py)


def test_a_plan_covers_the_volume_once_in_raster_order_with_clipped_halos() -> None:
    plan = block_plan((20, 600, 300), block=(16, 512, 256), align=[(16, 256, 256), (4, 256, 256)], halo=(2, 32, 32))
    assert [b.index for b in plan] == list(range(len(plan))) == list(range(2 * 2 * 2))
    seen = np.zeros((20, 600, 300), np.int8)
    for b in plan:
        seen[b.core] += 1
    assert (seen == 1).all()
    last = plan[len(plan) - 1]
    assert last.box == ((16, 20), (512, 600), (256, 300)) and last.voxels == 4 * 88 * 44
    assert last.outer == (slice(14, 20), slice(480, 600), slice(224, 300))  # halo clipped at the far edges
    assert plan[0].outer == (slice(0, 18), slice(0, 544), slice(0, 288))
    assert [b.core for b in plan] == [b.core for b in block_plan((20, 600, 300), block=(16, 512, 256))]


@pytest.mark.parametrize("bad", [dict(block=(16, 300, 256)), dict(block=(8, 256, 256)), dict(block=(16, 0, 256)),
                                 dict(halo=(-1, 0, 0)), dict(block=(16, 256))])
def test_a_plan_refuses_blocks_that_would_share_a_chunk_or_make_no_sense(bad: dict) -> None:
    with pytest.raises(ValueError):
        block_plan((20, 600, 300), **{"block": (16, 256, 256), "align": [(16, 256, 256)], **bad})


def test_one_block_along_an_axis_needs_no_alignment_there() -> None:
    plan = block_plan((20, 96, 96), block=(16, 1024, 1024), align=[(16, 96, 96), (1, 512, 512)])
    assert [b.box for b in plan] == [((0, 16), (0, 96), (0, 96)), ((16, 20), (0, 96), (0, 96))]


def test_a_plan_names_a_missing_block() -> None:
    with pytest.raises(IndexError):
        block_plan((4, 8, 8), block=(4, 8, 8))[1]


def _model(scale: int = 1, blend: bool = True):
    model = random_model(in_slices=3, heads=("nucleus", "mito"), seed=3)
    meta = {"z_blend": {"mito": 0.2}, "thresholds": {"mito": 0.45}} if blend else {}
    return dataclasses.replace(model, scale=scale, meta=meta)


def _segment(model, image, labels, block, lattice, *, order_seed=None, tta=False):
    """Labels and tile scores assembled from the blocks of a plan, run in a shuffled order."""
    plan = block_plan(image.shape, block=block, align=[(1, lattice.cell, lattice.cell)])
    blocks = list(plan)
    if order_seed is not None:
        random.Random(order_seed).shuffle(blocks)
    out = np.zeros(image.shape, np.uint8)
    parts = {}
    for b in blocks:
        result = segment_block(model, image, b.core, lattice=lattice, labels=labels, tile=16, tta=tta)
        out[b.core] = result.labels
        parts[b.index] = result.tiles
    scores, frac = tile_grid([parts[i] for i in sorted(parts)], shape=image.shape, tile=16, heads=2)
    return out, scores, frac, len(plan)


@pytest.mark.parametrize("scale", [1, 2])
def test_blockwise_segment_equals_one_whole_block_bit_for_bit_in_any_size_and_order(scale: int) -> None:
    model, image = _model(scale), volume((7, 64, 96), seed=1)
    labels = np.zeros(image.shape, np.uint8)
    labels[2, 10:30, 5:40] = 2
    lattice = Lattice(cell=32, context=16)
    whole, whole_scores, whole_frac, n = _segment(model, image, labels, (7, 64, 96), lattice)
    assert n == 1 and len(np.unique(whole)) >= 2  # a prediction with classes, not a flat one
    for block, seed in [((2, 32, 32), 0), ((3, 64, 32), 1), ((1, 32, 96), 2), ((7, 32, 64), 3)]:
        parts, scores, frac, n = _segment(model, image, labels, block, lattice, order_seed=seed)
        assert n > 1
        assert np.array_equal(parts, whole), block
        # tiles lie inside one block each (16 divides 32): their scores are equal bit for bit
        assert np.array_equal(scores, whole_scores, equal_nan=True) and np.array_equal(frac, whole_frac), block


def test_probabilities_and_uncertainty_of_a_block_do_not_depend_on_the_block_around_them() -> None:
    model, image = _model(), volume((5, 40, 72), seed=2)
    lattice = Lattice(cell=16, context=8)
    whole, u_whole = block_probabilities(model, image, (slice(0, 5), slice(0, 40), slice(0, 72)), lattice=lattice,
                                         tta=True, uncertainty=True)
    part, u_part = block_probabilities(model, image, (slice(1, 3), slice(16, 40), slice(32, 72)), lattice=lattice,
                                       tta=True, uncertainty=True)
    assert np.array_equal(part, whole[:, 1:3, 16:40, 32:72]) and np.array_equal(u_part, u_whole[:, 1:3, 16:40, 32:72])
    assert 0.0 <= u_whole.min() and u_whole.max() <= 1.0 and u_whole.std() > 0.01


def test_the_in_pass_ranking_equals_the_ranking_of_a_second_pass() -> None:
    """The segment job ranks the tile sums its blocks kept; the CLI's suggest runs tile_scores,
    a pass of its own: same scores, same picks."""
    model, image = _model(), volume((6, 64, 64), seed=4)
    labels = np.zeros(image.shape, np.uint8)
    labels[1] = 2  # a painted slice is never suggested
    lattice = Lattice(cell=32, context=16)
    _, in_pass, frac, _ = _segment(model, image, labels, (2, 32, 64), lattice, order_seed=5)
    second, second_frac = tile_scores(model, image, labels=labels, tile=16, tta=False, device="cpu", lattice=lattice,
                                      block=(3, 64, 32))
    assert np.array_equal(in_pass, second, equal_nan=True) and np.array_equal(frac, second_frac)
    picks = rank_tiles(in_pass.mean(-1), k=5, tile=16, shape=image.shape, labeled_fraction=frac)
    assert picks == rank_tiles(second.mean(-1), k=5, tile=16, shape=image.shape, labeled_fraction=second_frac)
    assert len(picks) == 5 and all(p.z != 1 for p in picks)


def test_tile_sums_add_up_across_blocks_that_cut_a_tile() -> None:
    u = np.random.default_rng(0).random((2, 3, 40, 40)).astype(np.float32)
    whole = block_tile_sums(u, (slice(0, 3), slice(0, 40), slice(0, 40)), tile=32)
    halves = [block_tile_sums(u[:, :, :, :24], (slice(0, 3), slice(0, 40), slice(0, 24)), tile=32),
              block_tile_sums(u[:, :, :, 24:], (slice(0, 3), slice(0, 40), slice(24, 40)), tile=32)]
    a, _ = tile_grid([whole], shape=(3, 40, 40), tile=32, heads=2)
    b, _ = tile_grid(halves, shape=(3, 40, 40), tile=32, heads=2)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a[0, 0, 0], u[:, 0, :32, :32].mean(axis=(1, 2)), rtol=1e-6)


def test_a_block_off_the_lattice_is_refused() -> None:
    model, image = _model(), volume((2, 64, 64))
    with pytest.raises(ValueError, match="lattice"):
        block_probabilities(model, image, (slice(0, 2), slice(8, 40), slice(0, 64)), lattice=Lattice(cell=32))
    with pytest.raises(ValueError, match="scale"):
        block_probabilities(_model(scale=2), image, (slice(0, 2), slice(0, 64), slice(0, 64)),
                            lattice=Lattice(cell=32, context=5))
