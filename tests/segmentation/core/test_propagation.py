from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from segmentation.core.propagation import (
    compute_flow,
    nearest_keys,
    normalise_slice,
    propagate_labels,
    warp_labels,
)


def _texture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(0, 1, shape), 2.0)


def _shifted_stack(n: int, dy: int, dx: int, size: int = 96) -> np.ndarray:
    """Slices of one textured field, each shifted by (dy, dx) from the one before."""
    big = _texture((size + 2 * n * abs(dy) + 20, size + 2 * n * abs(dx) + 20))
    oy, ox = n * abs(dy) + 10, n * abs(dx) + 10
    planes = [big[oy - z * dy : oy - z * dy + size, ox - z * dx : ox - z * dx + size] for z in range(n)]
    return np.stack([normalise_slice(p) for p in planes])


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_it_recovers_a_known_shift(method: str) -> None:
    stack = _shifted_stack(2, dy=2, dx=3)
    flow = compute_flow(stack[1], stack[0], method=method)
    centre = flow[20:-20, 20:-20]
    # Slice 1 is slice 0 moved by (+2, +3): a pixel of slice 1 sits at (-2, -3) in slice 0.
    assert np.median(centre[..., 0]) == pytest.approx(-3, abs=0.3)
    assert np.median(centre[..., 1]) == pytest.approx(-2, abs=0.3)


def test_it_warps_labels_along_the_flow_without_inventing_ids() -> None:
    stack = _shifted_stack(2, dy=2, dx=3)
    labels = np.zeros((96, 96), np.uint16)
    labels[30:60, 20:50] = 7
    labels[30:60, 50:70] = 9
    flow = compute_flow(stack[1], stack[0])
    moved = warp_labels(labels, flow)
    assert set(np.unique(moved)) <= {0, 7, 9}
    expected = np.zeros_like(labels)
    expected[32:62, 23:53] = 7
    expected[32:62, 53:73] = 9
    assert (moved == expected).mean() > 0.99


def test_it_warps_ids_beyond_uint16_exactly() -> None:
    labels = np.full((8, 8), 70_001, np.uint32)
    assert np.all(warp_labels(labels, np.zeros((8, 8, 2), np.float32)) == 70_001)


def test_it_finds_the_nearest_key_on_each_side() -> None:
    assert nearest_keys(6, [2, 4]) == [(None, 2), (None, 2), (2, 2), (2, 4), (4, 4), (4, None)]
    with pytest.raises(ValueError, match="outside"):
        nearest_keys(3, [5])


def test_it_carries_a_moving_cell_from_the_nearer_key() -> None:
    n = 9
    stack = _shifted_stack(n, dy=1, dx=2)
    truth = np.zeros((n, 96, 96), np.uint16)
    for z in range(n):
        truth[z, 30 + z : 60 + z, 10 + 2 * z : 40 + 2 * z] = 3
    keys = np.zeros_like(truth)
    keys[0], keys[8] = truth[0], truth[8]
    seen: list[float] = []
    out = propagate_labels(stack, keys, on_progress=seen.append)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out[0], truth[0])
    np.testing.assert_array_equal(out[8], truth[8])
    for z in range(1, 8):
        inter = np.sum((out[z] == 3) & (truth[z] == 3))
        dice = 2 * inter / (np.sum(out[z] == 3) + np.sum(truth[z] == 3))
        assert dice > 0.97, f"slice {z}: dice {dice:.3f}"
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_it_computes_one_flow_per_slice_carried(monkeypatch: pytest.MonkeyPatch) -> None:
    import segmentation.core.propagation as prop

    calls: list[int] = []
    real = prop.compute_flow

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prop, "compute_flow", counting)
    stack = _shifted_stack(12, dy=0, dx=1)
    keys = np.zeros((12, 96, 96), np.uint16)
    keys[3, 10:20, 10:20] = 1
    keys[9, 10:20, 10:20] = 1
    prop.propagate_labels(stack, keys)
    assert len(calls) == 12 - 2  # every non-key slice once, no slice twice


def test_it_refuses_keys_without_labels_or_of_another_shape() -> None:
    img = np.zeros((3, 16, 16), np.uint8)
    with pytest.raises(ValueError, match="no labelled slice"):
        propagate_labels(img, np.zeros((3, 16, 16), np.uint16))
    with pytest.raises(ValueError, match="shape"):
        propagate_labels(img, np.zeros((2, 16, 16), np.uint16))
    with pytest.raises(ValueError, match="flow method"):
        propagate_labels(img, np.ones((3, 16, 16), np.uint16), method="lucas")


def test_it_does_not_mutate_its_inputs() -> None:
    stack = _shifted_stack(4, dy=1, dx=0)
    keys = np.zeros((4, 96, 96), np.uint16)
    keys[0, 20:40, 20:40] = 2
    before_img, before_keys = stack.copy(), keys.copy()
    propagate_labels(stack, keys, method="farneback")
    np.testing.assert_array_equal(stack, before_img)
    np.testing.assert_array_equal(keys, before_keys)


def test_it_takes_each_slice_between_two_keys_from_the_nearer_one() -> None:
    stack = _shifted_stack(5, dy=0, dx=1)
    keys = np.zeros((5, 96, 96), np.uint16)
    keys[0, 30:60, 30:60] = 5  # the two keys disagree on the id, to see which one each slice used
    keys[4, 30:60, 34:64] = 6
    out = propagate_labels(stack, keys)
    ids = [set(np.unique(out[z]).tolist()) - {0} for z in range(5)]
    assert ids == [{5}, {5}, {5}, {6}, {6}]  # slice 2 is a tie and goes to the lower key
