"""The cell table and per-cell Dice counted slab by slab equal those of the whole array."""
from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.cell_counts import CellTableCounts, OverlapCounts, cell_table
from segmentation.core.metrics import instance_dice
from segmentation.core.phantom import make_phantom

VOXEL_NM = (8.0, 4.0, 4.0)


@pytest.fixture(scope="module")
def phantom_cells() -> tuple[np.ndarray, np.ndarray]:
    """Truth cells of a phantom and a prediction of them: one cell shifted, one split, one missed."""
    truth = make_phantom((20, 64, 80), seed=2, n_cells=5).cells.astype(np.uint32)
    ids = np.unique(truth[truth > 0])
    assert ids.size >= 4
    pred = truth.copy()
    pred[truth == ids[0]] = 0  # missed
    pred = np.where(pred == ids[1], 0, pred)
    pred[1:][truth[:-1] == ids[1]] = ids[1]  # shifted one slice up
    split = (truth == ids[2]) & (np.arange(truth.shape[2]) < truth.shape[2] // 2)
    pred[split] = 4000  # split in two, one half under an id larger than any truth id
    return truth, pred


@pytest.mark.parametrize("slab", [1, 3, 16, 20])
def test_the_table_counted_slab_by_slab_in_any_order_equals_the_whole_array_table(
        phantom_cells: tuple[np.ndarray, np.ndarray], slab: int) -> None:
    _, cells = phantom_cells
    counts = CellTableCounts()
    starts = list(range(0, cells.shape[0], slab))
    for z0 in reversed(starts):  # any order
        counts.add(cells[z0:z0 + slab], z0)
    whole = cell_table(cells, VOXEL_NM)
    assert len(whole) >= 4 and counts.rows(VOXEL_NM) == whole
    assert counts.top == int(cells.max())


def test_a_table_row_says_what_the_cell_is() -> None:
    cells = np.zeros((4, 5, 6), np.uint16)
    cells[1:3, 2, 1:4] = 7  # 2 slices x 3 voxels
    counts = CellTableCounts()
    counts.add(cells[:2], 0)
    counts.add(cells[2:], 2)
    assert counts.rows((10.0, 10.0, 10.0)) == [
        {"id": 7, "voxels": 6, "volume_um3": 6e-6, "z0": 1, "z1": 2, "slices": 2, "centroid": [1.5, 2.0, 2.0]}]
    assert CellTableCounts().rows(VOXEL_NM) == [] and CellTableCounts().top == 0


@pytest.mark.parametrize("slab", [1, 7, 20])
def test_the_dice_counted_slab_by_slab_equals_instance_dice_on_the_whole_arrays(
        phantom_cells: tuple[np.ndarray, np.ndarray], slab: int) -> None:
    truth, pred = phantom_cells
    overlap = OverlapCounts()
    for z0 in range(0, truth.shape[0], slab):
        overlap.add(pred[z0:z0 + slab], truth[z0:z0 + slab])
    whole = instance_dice(pred, truth)
    got = overlap.dice()
    assert got == whole
    assert 0.0 in got["cells"].values() and 0.0 < got["mean"] < 1.0  # the missed cell scores 0


def test_dice_ties_go_to_the_lower_predicted_id_and_empty_volumes_score_as_instance_dice_does() -> None:
    truth = np.array([[[1, 1, 1, 1]]])
    pred = np.array([[[9, 9, 3, 3]]])
    overlap = OverlapCounts()
    overlap.add(pred[..., :2], truth[..., :2])
    overlap.add(pred[..., 2:], truth[..., 2:])
    assert overlap.dice() == instance_dice(pred, truth) and overlap.dice()["matched"] == {1: 3}
    for p in (np.zeros((1, 2, 2), int), np.ones((1, 2, 2), int)):
        empty = OverlapCounts()
        empty.add(p, np.zeros_like(p))
        assert empty.dice() == instance_dice(p, np.zeros_like(p))
