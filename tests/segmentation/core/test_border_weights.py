"""Gap weights: the background between two nearly touching objects weighs more, nothing else changes."""
from __future__ import annotations

import numpy as np

from segmentation.core.border_weights import gap_weights


def _two_squares(gap: int) -> tuple[np.ndarray, np.ndarray]:
    target = np.zeros((1, 40, 40), np.float32)
    target[0, 10:20, 5:15] = 1
    target[0, 10:20, 15 + gap:25 + gap] = 1
    return target, np.ones_like(target)


def test_the_background_in_a_narrow_gap_weighs_far_more_than_open_background():
    target, weight = _two_squares(gap=2)
    out = gap_weights(target, weight, w0=5.0, sigma=2.0)
    assert out[0, 15, 15] > 1 + 0.5 * 5.0 * np.exp(-1)  # mid-gap: d1 + d2 = 2
    assert np.isclose(out[0, 35, 35], 1.0, atol=1e-3)  # far from both
    assert np.array_equal(out[0][target[0] > 0], weight[0][target[0] > 0])  # objects keep their weight


def test_a_wider_gap_gets_a_smaller_term():
    narrow = gap_weights(*_two_squares(gap=2), w0=5.0)[0, 15, 15]
    wide = gap_weights(*_two_squares(gap=6), w0=5.0)[0, 15, 17]
    assert narrow > wide > 1.0


def test_a_lone_object_unlabeled_pixels_and_w0_zero_change_nothing():
    target = np.zeros((1, 32, 32), np.float32)
    target[0, 8:16, 8:16] = 1
    weight = np.ones_like(target)
    assert np.array_equal(gap_weights(target, weight, w0=5.0), weight)
    two, w = _two_squares(gap=2)
    w[0, :, 15:17] = 0  # the gap is not painted
    out = gap_weights(two, w, w0=5.0)
    assert (out[0, :, 15:17] == 0).all()
    assert gap_weights(two, w, w0=0.0) is w


def test_the_sampler_adds_the_term_to_its_patches_and_draws_the_same_patches():
    from segmentation.core.classes import ClassSpec
    from segmentation.core.sampling import LabeledSlices, PatchSampler

    labels = np.ones((1, 48, 48), np.uint8)  # painted background
    labels[0, 10:30, 8:20] = 2
    labels[0, 10:30, 22:34] = 2  # a 2-px gap between two objects
    data = LabeledSlices(np.zeros((1, 1, 48, 48), np.float32), labels, np.array([True]), [0])

    def batch(w0: float) -> tuple[np.ndarray, ...]:
        sampler = PatchSampler(data, ClassSpec.build({"background": 1, "mito": 2}), patch=48,
                               rng=np.random.default_rng(0), gap_weight=w0)
        return sampler.batch(4, augment_data=False)

    (x0, t0, w0), (x1, t1, w1) = batch(0.0), batch(5.0)
    assert np.array_equal(x0, x1) and np.array_equal(t0, t1)
    assert (w1 >= w0).all() and w1.max() > 2.0 and w0.max() == 1.0
