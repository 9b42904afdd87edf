from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.cells import interior_mask, segment_cells, split_interior
from segmentation.core.metrics import instance_dice
from segmentation.core.phantom import key_slices, make_phantom


def _two_cells(n: int = 7, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Two touching cells whose dark shared membrane slides 2 px right per slice."""
    rng = np.random.default_rng(0)
    truth = np.zeros((n, size, size), np.uint16)
    img = np.full((n, size, size), 190.0)
    for z in range(n):
        wall = 24 + 2 * z
        truth[z, 4:60, 4:wall] = 1
        truth[z, 4:60, wall + 1 : 60] = 2
        img[z, 4:60, wall - 1 : wall + 2] = 50.0  # the membrane
    img[truth == 0] = 230.0
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


def test_it_splits_an_interior_slice_along_the_dark_membrane() -> None:
    img, truth = _two_cells()
    interior = truth[3] > 0
    seeds = np.zeros_like(truth[3])
    seeds[10:50, 8:20] = 1  # rough seeds that stop short of the membrane
    seeds[10:50, 40:56] = 2
    out = split_interior(img[3], interior, seeds)
    wall = 24 + 2 * 3
    assert np.all(out[10:50, 8 : wall - 1] == 1)
    assert np.all(out[10:50, wall + 2 : 56] == 2)
    assert not out[~interior].any()


def test_it_restricts_propagated_labels_to_the_interior() -> None:
    img, truth = _two_cells()
    keys = key_slices(truth, every=6)
    keys[0, 0:4, :] = 1  # painted beyond the interior on the key slice
    fused = segment_cells(img, truth > 0, keys).cells
    assert not fused[1:6][truth[1:6] == 0].any()


def test_it_follows_the_membrane_better_than_flow_alone() -> None:
    img, truth = _two_cells()
    keys = key_slices(truth, every=6)
    fused = segment_cells(img, truth > 0, keys, method="fusion").cells
    flow = segment_cells(img, truth > 0, keys, method="flow").cells
    f, g = instance_dice(fused, truth), instance_dice(flow, truth)
    assert f["mean"] > 0.97
    assert f["mean"] >= g["mean"]


def test_it_gives_a_protrusion_cut_off_by_the_plane_to_the_cell_it_is_tracked_to() -> None:
    # Cell 1 body on the left; a tube leaves it in slice 1, runs right through
    # slices 2..4, and comes back down in slice 5 at a spot far from any cell;
    # keys on 0 and 6 never show the tube, so propagation cannot reach it.
    n, size = 7, 48
    truth = np.zeros((n, size, size), np.uint16)
    truth[:, 4:44, 2:14] = 1
    truth[:, 4:44, 34:46] = 2
    truth[1, 20:23, 14:18] = 1  # leaving the body
    truth[2, 20:23, 16:22] = 1
    truth[3, 20:23, 20:26] = 1  # arc top: an island in the slice plane
    truth[4, 20:23, 24:28] = 1
    truth[5, 20:23, 26:29] = 1  # the tip, an island
    img = np.where(truth > 0, 170, 225).astype(np.uint8)
    keys = key_slices(truth, every=6)
    res = segment_cells(img, truth > 0, keys)
    tube = np.zeros_like(truth, bool)
    tube[2:6, 20:23, 16:29] = truth[2:6, 20:23, 16:29] == 1
    assert np.all(res.cells[tube] == 1)
    assert res.tracked_regions >= 3
    assert not res.unresolved
    flow = segment_cells(img, truth > 0, keys, method="flow").cells
    assert not np.all(flow[tube] == 1)


def test_it_reports_an_interior_region_that_links_to_no_cell_and_gives_it_a_new_id() -> None:
    truth = np.zeros((5, 32, 32), np.uint16)
    truth[:, 2:14, 2:14] = 1
    img = np.where(truth > 0, 170, 225).astype(np.uint8)
    interior = truth > 0
    interior[2, 24:28, 24:28] = True  # debris in one slice, touching nothing
    keys = key_slices(truth, every=4)
    res = segment_cells(img, interior, keys)
    debris = res.cells[2, 24:28, 24:28]
    assert len(np.unique(debris)) == 1 and int(debris[0, 0]) not in (0, 1)
    assert [(u.z, u.area) for u in res.unresolved] == [(2, 16)]


def _wire_beside_a_cell(n: int = 8, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Cell 1 on the left and a one-voxel wire leaving it in slice 1, climbing one slice
    per two steps right to slice 4, with keys on 0 and 7 that never show the wire."""
    truth = np.zeros((n, size, size), np.uint16)
    truth[:, 4:36, 2:12] = 1
    y = 20
    x = 12
    for z in range(1, 5):  # a staircase: along x in slice z, then up one slice
        truth[z, y, x : x + 3] = 1
        x += 2
    truth[4, y, x : x + 4] = 1  # the wire's top, several voxels along x in one slice
    img = np.where(truth > 0, 170, 225).astype(np.uint8)
    return img, truth


def test_it_gives_a_one_voxel_wire_overlapping_its_next_cross_section_by_one_pixel_to_its_cell() -> None:
    img, truth = _wire_beside_a_cell()
    wire = (truth == 1) & (np.arange(truth.shape[2]) >= 12)
    res = segment_cells(img, truth > 0, key_slices(truth, every=7))
    assert np.all(res.cells[wire] == 1)
    assert not res.unresolved


def test_it_bridges_a_hole_in_the_interior_that_cuts_a_thin_wire_off_its_cell() -> None:
    img, truth = _wire_beside_a_cell()
    interior = truth > 0
    interior[4, 20, 20:22] = False  # a two-voxel hole cuts the wire's top off
    top = interior & (np.arange(truth.shape[2]) >= 22)
    res = segment_cells(img, interior, key_slices(truth, every=7))
    assert np.all(res.cells[top] == 1)
    assert not res.unresolved
    assert not res.cells[~interior].any()
    apart = segment_cells(img, interior, key_slices(truth, every=7), max_gap=0)
    assert not np.any(apart.cells[top] == 1) and apart.unresolved


def test_it_keeps_a_wide_region_beyond_a_small_gap_as_a_cell_of_its_own() -> None:
    truth = np.zeros((5, 32, 32), np.uint16)
    truth[:, 2:28, 2:14] = 1
    img = np.where(truth > 0, 170, 225).astype(np.uint8)
    interior = truth > 0
    interior[1:4, 4:26, 16:28] = True  # a cell no key shows, two voxels from cell 1
    res = segment_cells(img, interior, key_slices(truth, every=4))
    other = res.cells[1:4, 4:26, 16:28]
    assert len(np.unique(other)) == 1 and int(other[0, 0, 0]) not in (0, 1)


def test_it_keeps_thin_protrusions_with_holes_in_their_cell_on_the_phantom() -> None:
    ph = make_phantom((24, 128, 128), seed=1, n_cells=5, protrusion_radius=0.5)
    interior = ph.interior.copy()
    for i, p in enumerate(ph.protrusions, start=1):
        tube = np.argwhere(ph.protrusion_ids == i)
        cut = tube[np.argsort(np.abs(tube[:, 0] - p.base_z), kind="stable")][len(tube) // 3 :: 7]
        interior[tuple(cut[:, :1].T) + tuple(cut[:, 1:].T)] = False  # holes along every tube
    keys = key_slices(ph.cells, every=12)
    res = segment_cells(ph.image, interior, keys)
    assert instance_dice(res.cells, ph.cells)["mean"] >= 0.985
    assert len(ph.protrusions) >= 2
    for i, p in enumerate(ph.protrusions, start=1):
        kept = (ph.protrusion_ids == i) & interior
        assert np.mean(res.cells[kept] == p.cell_id) >= 0.95, f"protrusion {i} of cell {p.cell_id}"


def test_it_labels_3d_components_of_the_interior_with_the_interior_method() -> None:
    interior = np.zeros((4, 16, 16), bool)
    interior[:, 1:7, 1:7] = True
    interior[:, 9:15, 9:15] = True
    out = segment_cells(np.zeros((4, 16, 16), np.uint8), interior, np.zeros((4, 16, 16), np.uint16), method="interior")
    assert out.cells.dtype == np.uint32
    assert len(np.unique(out.cells)) == 3


def test_it_reads_interior_probabilities_masks_and_0_255_images() -> None:
    p = np.array([[[0.2, 0.5, 0.9]]])
    assert interior_mask(p).tolist() == [[[False, True, True]]]
    assert interior_mask(np.array([[[0, 255]]], np.uint8)).tolist() == [[[False, True]]]
    with pytest.raises(ValueError, match="probabilities"):
        interior_mask(np.array([[[2.0]]]))


def test_it_refuses_an_unknown_method_or_flow() -> None:
    a = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="method"):
        segment_cells(a, a, a, method="magic")
    with pytest.raises(ValueError, match="flow"):
        segment_cells(a, a, a, flow="lk")


def test_it_reports_progress_up_to_one() -> None:
    img, truth = _two_cells()
    seen: list[float] = []
    segment_cells(img, truth > 0, key_slices(truth, every=6), on_progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 3


def test_it_beats_both_single_methods_on_the_phantom_and_keeps_protrusions() -> None:
    ph = make_phantom((24, 128, 128), seed=2, n_cells=5)
    keys = key_slices(ph.cells, every=12)
    fused = segment_cells(ph.image, ph.interior, keys, method="fusion").cells
    flow = segment_cells(ph.image, ph.interior, keys, method="flow").cells
    inter = segment_cells(ph.image, ph.interior, keys, method="interior").cells
    f, g, h = (instance_dice(x, ph.cells) for x in (fused, flow, inter))
    assert f["mean"] >= 0.95
    wins = sum(f["cells"][c] > max(g["cells"][c], h["cells"][c]) for c in f["cells"])
    assert wins > len(f["cells"]) / 2
    assert ph.protrusions
    for i, p in enumerate(ph.protrusions, start=1):
        tube = ph.protrusion_ids == i
        assert np.mean(fused[tube] == p.cell_id) > 0.9, f"protrusion {i} of cell {p.cell_id}"
